import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { TcpProxy } from '../helpers/proxy.js';
import { request, startServer } from '../helpers/server.js';

/**
 * The database goes away while postgres.js sets a new connection up: after the server's
 * ReadyForQuery, before the answer to the array-types query postgres.js sends first on
 * every connection. postgres.js rejects that query's promise, which nobody holds, with the
 * lost connection's error; unhandled, Node would stop the service (seen at the crash in
 * test/faults/outage.test.ts: "connect ENOENT"). Here a TCP proxy in front of a real
 * PostgreSQL cuts every connection when it sees that query and refuses new ones for a
 * second, every time: the service must stay up, answer 503 meanwhile, and recover.
 */
describe('a database lost while a connection is set up', () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let cutAtTypes = false;
  let cuts = 0;

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    proxy = await TcpProxy.start(Number(new URL(db.url).port), (chunk) => {
      if (!cutAtTypes || !chunk.includes('typcategory')) return 'pass';
      cutAtTypes = false;
      cuts++;
      // Every connection reset, new ones refused for a second, then let in again.
      void proxy.pause().then(async () => {
        await new Promise((r) => setTimeout(r, 1000));
        await proxy.resume();
      });
      return 'drop';
    });
  });
  afterAll(async () => {
    await proxy?.close();
    await db?.drop();
  });

  it('leaves the service up: 503 while it is gone, 200 once it is back', async () => {
    const url = new URL(db.url);
    url.host = `127.0.0.1:${proxy.port}`;
    url.search = '';
    const server = await startServer({
      DATABASE_URL: url.toString(),
      STORAGE_MODE: 'postgres',
      DATABASE_POOL_MAX: '30',
      REFRESH_INTERVAL_MS: '200',
    });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 30 });
    try {
      for (let round = 1; round <= 3; round++) {
        cutAtTypes = true;
        // Concurrent reads and writes: the pool opens new connections, the first of which
        // is cut at its array-types query.
        const answers = await Promise.all(
          Array.from({ length: 30 }, (_, i) =>
            request(agent, server.port, 'GET', i % 2 ? `/collect?cid=r${round}u${i}` : '/daily_uniques').catch(
              (err: unknown) => ({ status: 0, body: String(err) }),
            ),
          ),
        );
        expect(server.child.exitCode, server.output().slice(-3000)).toBeNull();
        expect(answers.filter((a) => a.status !== 200 && a.status !== 503)).toEqual([]);
        // Back: every request answered 200 again within a few seconds.
        let status = 0;
        for (let i = 0; i < 50 && status !== 200; i++) {
          await new Promise((r) => setTimeout(r, 200));
          status = (await request(agent, server.port, 'GET', `/collect?cid=back${round}`)).status;
        }
        expect(status).toBe(200);
      }
      expect(cuts).toBe(3);
      expect(server.child.exitCode).toBeNull();
      expect(server.output()).toContain('postgres.js lost a connection while setting it up; the pool reconnects');
      expect(server.output()).not.toContain('"level":"fatal"');
    } finally {
      agent.destroy();
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }, 90_000);
});
