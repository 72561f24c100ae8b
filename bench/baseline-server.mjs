// The baseline of npm run bench: a bare node:http server answering 200 with an empty
// body, measured the same way as headcount in the same run.
import http from 'node:http';

const port = Number(process.argv[2] ?? 9000);
const server = http.createServer((_req, res) => {
  res.statusCode = 200;
  res.end();
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => process.send?.('listening'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
