import net from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { databaseSocket } from '../../src/db/client.js';

/**
 * A database socket reset by the server after postgres.js removed its listeners (it does
 * so on every socket it is done with) must not throw: the error would have no handler and
 * stop the service (test/faults/outage.test.ts over TCP, once in a clean run on Node 24).
 * Without the fix in databaseSocket, vitest reports the uncaught ECONNRESET and this fails.
 */
let server: net.Server | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await new Promise((r) => (server ? server.close(r) : r(undefined)));
  server = undefined;
});

it('keeps an error listener on a database socket whose listeners were all removed, so a reset does not throw', async () => {
  const accepted: net.Socket[] = [];
  server = net.createServer((conn) => {
    accepted.push(conn);
    sockets.push(conn);
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;

  const socket = databaseSocket({ host: ['127.0.0.1'], port: [port] });
  sockets.push(socket);
  await new Promise((r) => socket.once('connect', r));
  while (accepted.length === 0) await new Promise((r) => setTimeout(r, 5));
  // What postgres.js's 'close' handler does to the socket it holds.
  socket.removeAllListeners();
  expect(socket.listenerCount('error')).toBe(1);

  const closed = new Promise<boolean>((r) => socket.once('close', r));
  accepted[0]!.resetAndDestroy();
  // Closed with an error (the reset), and nothing thrown.
  expect(await closed).toBe(true);
});

it('lets a listener be removed by name as usual', () => {
  const socket = databaseSocket({ host: ['127.0.0.1'], port: [1] });
  const mine = () => {};
  socket.on('data', mine);
  socket.removeAllListeners('data');
  expect(socket.listenerCount('data')).toBe(0);
  expect(socket.listenerCount('error')).toBe(1);
  socket.destroy();
});
