import type { RequestListener } from 'node:http';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createService, type Service } from '../../src/app.js';
import { withHotRoutes } from '../../src/hot-routes.js';
import { silentLogger } from '../../src/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { Rejections } from '../../src/ops/rejections.js';
import { startTestApp, TEST_SITE, type TestApp } from '../helpers/app.js';

/** The parts of a response a client can see, less what differs on every request. */
const visible = (res: supertest.Response) => {
  const headers = { ...res.headers } as Record<string, string>;
  expect(headers['x-request-id']).toMatch(/^[\x21-\x7e]{1,128}$/);
  delete headers['x-request-id'];
  delete headers.date;
  return { status: res.status, headers, body: res.text };
};

/**
 * GET /collect and POST /analytics are answered without Koa when valid
 * (src/hot-routes.ts): exactly as Koa answers them, and everything else still by Koa.
 */
describe('the hot write routes', () => {
  let t: TestApp;
  let service: Service;
  let hot: RequestListener;
  let koaOnly: RequestListener;
  const toKoa: string[] = [];
  beforeAll(async () => {
    t = await startTestApp('postgres');
    const metrics = new Metrics();
    service = createService({ sql: t.db.sql, writer: t.runtime.writer, site: TEST_SITE, metrics, log: silentLogger });
    const handle = service.app.callback();
    koaOnly = (req, res) => void handle(req, res);
    hot = withHotRoutes(
      {
        writer: t.runtime.writer,
        site: TEST_SITE,
        metrics,
        rejections: new Rejections(metrics, silentLogger),
        retryAfterSeconds: 1,
        log: silentLogger,
      },
      (req, res) => {
        toKoa.push(`${req.method} ${req.url}`);
        koaOnly(req, res);
      },
    );
  });
  afterAll(async () => t?.close());

  const both = async (send: (http: supertest.Agent) => supertest.Test) => {
    toKoa.length = 0;
    const viaHot = await send(supertest.agent(hot));
    const hotToKoa = [...toKoa];
    const viaKoa = await send(supertest.agent(koaOnly));
    expect(visible(viaHot)).toEqual(visible(viaKoa));
    return { hotToKoa, status: viaHot.status };
  };

  it('answers valid writes itself, as Koa does, and stores the same events', async () => {
    const now = Date.now();
    const writes: [string, (h: supertest.Agent) => supertest.Test][] = [
      ['collect', (h) => h.get('/collect').query({ cid: 'hot-a' })],
      ['collect with d', (h) => h.get(`/collect?cid=hot-b&d=${Math.floor(now / 1000) - 3600}`)],
      ['analytics event=', (h) => h.post(`/analytics?timestamp=${now}&user=hot-c&event=click`)],
      ['analytics flag', (h) => h.post(`/analytics?timestamp=${now}&user=hot-d&impression`)],
      ['analytics with a body', (h) => h.post(`/analytics?timestamp=${now}&user=hot-e&click`).send({ ignored: true })],
    ];
    for (const [name, send] of writes) {
      const r = await both(send);
      expect(r.hotToKoa, name).toEqual([]);
      expect(r.status, name).toBeLessThan(300);
    }
    const stored = await t.db.sql`
      select user_id, kind, count(*)::int as n from events where user_id like 'hot-%' group by 1, 2 order by 1
    `;
    expect(stored.map((r) => `${r.user_id} ${r.kind} ${r.n}`)).toEqual([
      'hot-a collect 2',
      'hot-b collect 2',
      'hot-c click 2',
      'hot-d impression 2',
      'hot-e click 2',
    ]);
  });

  it('leaves every other request to Koa, which answers it as before', async () => {
    const others: [string, (h: supertest.Agent) => supertest.Test][] = [
      ['no cid', (h) => h.get('/collect')],
      ['NUL', (h) => h.get('/collect?cid=a%00b')],
      ['bad d', (h) => h.get('/collect?cid=a&d=yesterday')],
      ['two events', (h) => h.post(`/analytics?timestamp=${Date.now()}&user=u&click&impression`)],
      ['trailing slash', (h) => h.get('/collect/?cid=a')],
      ['HEAD', (h) => h.head('/collect?cid=a')],
      ['read', (h) => h.get('/daily_uniques')],
    ];
    for (const [name, send] of others) {
      const r = await both(send);
      expect(r.hotToKoa, name).toHaveLength(1);
    }
  });

  it('answers a write it cannot store with the envelope Koa sends', async () => {
    await t.runtime.writer.close();
    const r = await both((h) => h.get('/collect').query({ cid: 'too-late' }));
    expect(r.hotToKoa).toEqual([]);
    expect(r.status).toBe(503);
    const res = await supertest(hot).post(`/analytics?timestamp=${Date.now()}&user=u&click`);
    expect(res.headers['retry-after']).toBe('1');
    expect(res.body).toEqual({ error: { code: 'shutting_down', message: expect.any(String) } });
  });
});
