// A second reference for npm run bench: Koa + @koa/router with the service's route
// shapes but no validation and no database, to show what the framework alone costs.
import Router from '@koa/router';
import Koa from 'koa';

const port = Number(process.argv[2] ?? 9001);
const app = new Koa();
const router = new Router();
router.get('/collect', (ctx) => {
  ctx.status = 200;
  ctx.body = '';
});
router.post('/analytics', (ctx) => {
  ctx.status = 204;
});
app.use(router.routes());
const server = app.listen(port, '127.0.0.1', () => process.send?.('listening'));
server.keepAliveTimeout = 65_000;
process.on('SIGTERM', () => server.close(() => process.exit(0)));
