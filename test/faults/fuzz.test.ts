import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createGuardedServer } from '../../src/http/server-guards.js';
import { silentLogger } from '../../src/log.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { first } from '../helpers/db.js';
import { prng } from '../helpers/events.js';
import { type Answer, request } from '../helpers/server.js';

/**
 * Thousands of generated malformed requests to every route, each invalid by
 * construction: never a 5xx, every error in the JSON envelope, nothing stored.
 */
describe('malformed requests (fuzz)', () => {
  let t: TestApp;
  let server: http.Server;
  let port: number;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

  beforeAll(async () => {
    t = await startTestApp('postgres');
    const app = createApp({ sql: t.db.sql, writer: t.runtime.writer, site: 'default', log: silentLogger });
    const handle = app.callback();
    server = createGuardedServer((req, res) => void handle(req, res), { requestTimeoutMs: 2000, maxConnections: 1000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    agent.destroy();
    await new Promise((r) => server.close(r));
    await t?.close();
  });

  const rand = prng(2026);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const junk = [
    '%00',
    'a%00b',
    '%',
    '%zz',
    '%E0%A4%A',
    '%FF%FE',
    'x'.repeat(5000),
    '-1',
    '1e309',
    'NaN',
    '0x10',
    '',
    '%F0%9F%98%80%00',
    encodeURIComponent('{"$ne":null}'),
    '..%2F..%2Fetc%2Fpasswd',
    '9'.repeat(40),
  ];
  const future = Date.now() + 3_600_000;
  /** Query strings that no route accepts: each carries at least one value that is wrong for its parameter. */
  const badQueries: [string, string, () => string][] = [
    ['GET', '/collect', () => `cid=${pick(['%00', 'a%00b', '', 'x'.repeat(300)])}&d=${pick(junk)}`],
    ['GET', '/collect', () => `cid=a&d=${pick(['%00', '-1', 'NaN', '1e309', String(future), '99999999999999', '%zz'])}`],
    ['GET', '/collect', () => `d=${pick(junk)}`],
    ['GET', '/daily_uniques', () => `d=${pick(['%00', '2026-13-01', '20260230', 'today', '%zz', '9'.repeat(40), '2026-1-1'])}`],
    ['GET', '/monthly_uniques', () => `d=${pick(['%00', '2026-02-30', 'x', '%E0%A4%A'])}&d=${pick(junk)}`],
    ['POST', '/analytics', () => `timestamp=${pick(junk)}&user=a&event=click`],
    ['POST', '/analytics', () => `timestamp=${Date.now()}&user=${pick(['%00', 'a%00b', 'x'.repeat(300)])}&event=click`],
    ['POST', '/analytics', () => `timestamp=${Date.now()}&user=a&event=${pick(['view', '%00', '', 'click%00'])}`],
    ['POST', '/analytics', () => `timestamp=${Date.now()}&user=a&click&impression`],
    ['GET', '/analytics', () => `timestamp=${pick(junk)}`],
    ['GET', '/report', () => `page=${pick(['%00', 'a%00b', ''])}&take=${pick(junk)}`],
    ['GET', '/report', () => `page=/a&now=${pick(['%00', 'yesterday', '2026-11-23T25:00:00Z', '%zz'])}`],
    ['GET', '/report', () => `page=/a&order=${pick(['up', '%00', ''])}`],
    ['GET', '/v1/stats', () => `from=${pick(junk)}&to=2026-11-23&timezone=${pick(['Mars/Base', '%00', '+25:00', 'UTC+3'])}`],
    ['GET', '/v1/stats', () => `from=2026-11-20&to=2026-11-23&granularity=${pick(['second', '%00', ''])}&kind=${pick(junk)}`],
    ['GET', '/v1/stats', () => `site=${pick(['UPPER', '%00', '-x', 'a'.repeat(200)])}&from=2026-11-20&to=2026-11-23`],
    ['GET', '/v1/export', () => `from=${pick(junk)}&to=${pick(junk)}&format=${pick(['xml', '%00', ''])}`],
  ];
  /** Bodies that the page-view routes refuse. */
  const badBodies: [string, () => string][] = [
    [
      '/page-views/single',
      () => pick(['', '{', 'null', '[]', '"x"', '{"page":1}', '{"page":"a\\u0000b","timestamp":"2026-11-23T00:00:00Z"}']),
    ],
    ['/page-views/single', () => JSON.stringify({ page: 'x'.repeat(3000), timestamp: new Date().toISOString() })],
    ['/page-views/single', () => JSON.stringify({ page: '/a', timestamp: pick(['', 'now', '2026-13-01T00:00:00Z', 12345]) })],
    ['/page-views/multi', () => pick(['{}', '[]', '{"a":1}', '{"a":{"x":1}}', '{"a":{"2026-11-23T00:00:00Z":-1}}', '{"":{}}'])],
    ['/page-views/multi', () => JSON.stringify({ 'a\u0000b': { [new Date().toISOString()]: 1 } })],
    ['/page-views/multi', () => JSON.stringify({ '/a': { [new Date().toISOString()]: 1.5 } })],
    ['/page-views/multi', () => '['.repeat(5000) + ']'.repeat(5000)],
    ['/page-views/multi', () => `{"a":${'{"b":'.repeat(2000)}1${'}'.repeat(2000)}}`],
    ['/page-views/multi', () => '{"a":{"' + 'x'.repeat(2 * 1024 * 1024) + '":1}}'],
    ['/v1/events', () => pick(['', '{', '[]', '{"events":{}}', '{"events":[]}', '{"events":[1,2,3]}', 'null'])],
    [
      '/v1/events',
      () =>
        JSON.stringify({
          events: [
            { user: 'a\u0000b', kind: 'x' },
            { user: 'u', kind: 'Bad Kind' },
          ],
        }),
    ],
    ['/v1/events', () => JSON.stringify({ events: [{ user: 'u', kind: 'k', site: 'UPPER' }, { kind: 'k' }] })],
    ['/v1/events', () => JSON.stringify({ events: [{ user: 'u', kind: 'k', time: pick([-1, 'now', 1e20, '2026-11-23']) }] })],
    ['/v1/events', () => `{"events":${'['.repeat(3000)}${']'.repeat(3000)}}`],
  ];
  const oddMethods = ['PUT', 'DELETE', 'PATCH', 'TRACE', 'PROPFIND', 'OPTIONS'];
  const routes = [
    '/collect',
    '/daily_uniques',
    '/monthly_uniques',
    '/analytics',
    '/page-views/single',
    '/page-views/multi',
    '/report',
    '/health',
    '/nope',
  ];

  const expectEnvelope = (what: string, a: Answer): void => {
    expect(a.status, `${what} → ${a.status} ${a.body.slice(0, 200)}`).toBeGreaterThanOrEqual(400);
    expect(a.status, `${what} → ${a.status} ${a.body.slice(0, 200)}`).toBeLessThan(500);
    if (a.status === 204 || a.status === 304) return;
    const parsed = JSON.parse(a.body) as { error?: { code?: unknown; message?: unknown } };
    expect(typeof parsed.error?.code, what).toBe('string');
    expect(typeof parsed.error?.message, what).toBe('string');
  };

  it('answers 4xx in the envelope to thousands of bad queries, bodies and methods, and stores nothing', async () => {
    const jobs: (() => Promise<void>)[] = [];
    for (let i = 0; i < 2600; i++) {
      const [method, path, query] = pick(badQueries);
      const q = query();
      jobs.push(async () =>
        expectEnvelope(`${method} ${path}?${q.slice(0, 80)}`, await request(agent, port, method, `${path}?${q}`)),
      );
    }
    for (let i = 0; i < 400; i++) {
      const [path, body] = pick(badBodies);
      const b = body();
      jobs.push(async () => expectEnvelope(`POST ${path} ${b.slice(0, 60)}`, await request(agent, port, 'POST', path, b)));
    }
    for (const method of oddMethods) {
      for (const route of routes) {
        jobs.push(async () => {
          const a = await request(agent, port, method, route);
          if (method === 'OPTIONS' && a.status === 200) return; // an honest answer to OPTIONS
          expectEnvelope(`${method} ${route}`, a);
        });
      }
    }
    for (let i = 0; i < jobs.length; i += 64) await Promise.all(jobs.slice(i, i + 64).map((job) => job()));
    expect(jobs.length).toBeGreaterThan(3000);
    expect(first(await t.db.sql`select count(*)::int as n from events`).n).toBe(0);
  }, 120_000);

  const raw = (text: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write(text));
      let out = '';
      socket.on('data', (d: Buffer) => (out += d.toString('latin1')));
      socket.on('end', () => resolve(out));
      socket.on('close', () => resolve(out));
      socket.on('error', reject);
      socket.setTimeout(5000, () => socket.destroy());
    });

  it('cuts off a client that trickles its body a byte at a time, with 408 in the envelope', async () => {
    const started = Date.now();
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => {
        socket.write(
          'POST /page-views/single HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n',
        );
        const drip = setInterval(() => socket.writable && socket.write('{'), 100);
        socket.on('close', () => clearInterval(drip));
      });
      let out = '';
      socket.on('data', (d: Buffer) => (out += d.toString()));
      socket.on('close', () => resolve(out));
      socket.on('error', reject);
    });
    // requestTimeoutMs is 2 s here (HTTP_REQUEST_TIMEOUT_MS, 15 s by default); Node looks every second.
    expect(Date.now() - started).toBeLessThan(4000);
    expect(answer).toMatch(/^HTTP\/1.1 408 /);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)).error.code).toBe('request_timeout');
  });

  it.each([
    ['a space in the request line', 'GET /collect?cid=a b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['a NUL in the request line', 'GET /collect?cid=a\0b HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['headers over 16 KB', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['not HTTP at all', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n', 400],
    ['CONNECT', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 405],
  ])('answers %s in the envelope (Node refuses it before Koa)', async (_what, text, status) => {
    const out = await raw(text);
    expect(out).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
    const body = out.slice(out.indexOf('\r\n\r\n') + 4);
    expect(JSON.parse(body).error.code).toMatch(/^[a-z_]+$/);
  });
});
