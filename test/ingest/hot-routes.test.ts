import type { RequestListener } from 'node:http';
import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createService, type Service } from '../../src/app.js';
import { withHotRoutes } from '../../src/hot-routes.js';
import { silentLogger } from '../../src/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { Rejections } from '../../src/ops/rejections.js';
import { createKey } from '../../src/v1/auth/keys.js';
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

/**
 * POST /v1/events from a server-side client (no Origin, a key this instance knows) is
 * answered without Koa too (src/hot-routes.ts), by the route's own code: the same
 * answers, errors and events as Koa's route, which still answers everything else.
 */
describe('POST /v1/events on the hot path', () => {
  let t: TestApp;
  let hot: RequestListener;
  let koaOnly: RequestListener;
  let ingestKey: string;
  let readKey: string;
  const toKoa: string[] = [];
  beforeAll(async () => {
    t = await startTestApp('postgres');
    const service = createService({
      sql: t.db.sql,
      writer: t.runtime.writer,
      site: TEST_SITE,
      metrics: new Metrics(),
      log: silentLogger,
      v1Auth: 'keys',
    });
    // Counts what reaches Koa; the hot listener's Koa and Koa alone share the app, its
    // keys and rate limits.
    service.app.middleware.unshift(async (ctx, next) => {
      toKoa.push(`${ctx.method} ${ctx.url}`);
      await next();
    });
    hot = service.listener();
    const handle = service.app.callback();
    koaOnly = (req, res) => void handle(req, res);
    ingestKey = (await createKey(t.db.sql, { scope: 'ingest', site: TEST_SITE, name: 'hot' })).key;
    readKey = (await createKey(t.db.sql, { scope: 'read', site: TEST_SITE, name: 'hot-read' })).key;
  });
  afterAll(async () => t?.close());

  /** A request sent to the hot listener, then to Koa alone: what each answered, and whether the first reached Koa. */
  const both = async (send: (http: supertest.Agent) => supertest.Test) => {
    toKoa.length = 0;
    const viaHot = await send(supertest.agent(hot));
    const hotToKoa = toKoa.length > 0;
    const viaKoa = await send(supertest.agent(koaOnly));
    // A token taken from the key's bucket per request: the count left differs by one.
    const rate = (res: supertest.Response) => {
      const v = visible(res);
      for (const name of ['ratelimit-remaining', 'ratelimit-reset']) {
        expect(v.headers[name] === undefined, name).toBe(res.headers['ratelimit-limit'] === undefined);
        delete v.headers[name];
      }
      return v;
    };
    expect(rate(viaHot)).toEqual(rate(viaKoa));
    return { hotToKoa, res: viaHot };
  };
  const post = (body: unknown, key = ingestKey) => (h: supertest.Agent) =>
    h.post('/v1/events').set('Authorization', `Bearer ${key}`).send(body as object);

  it('answers valid batches itself, as Koa does, and stores the same events', async () => {
    // The key's first use is looked up by Koa; from then on the hot path knows it.
    expect((await both(post({ events: [{ user: 'warm', kind: 'click' }] }))).hotToKoa).toBe(true);
    const now = Date.now();
    const batches: [string, unknown][] = [
      ['one event', { events: [{ user: 'hv-a', kind: 'pageview', page: '/a' }] }],
      [
        'dimensions and props',
        { events: [{ user: 'hv-b', kind: 'pageview', page: '/b', country: 'DE', referrer: 'https://x.example/p', props: { plan: 'pro' } }] },
      ],
      ['one valid, one not', { events: [{ user: 'hv-d', kind: 'click' }, { user: 'hv-e', kind: 'Bad Kind' }] }],
    ];
    for (const [name, body] of batches) {
      const r = await both(post(body));
      expect(r.hotToKoa, name).toBe(false);
      expect(r.res.status, name).toBe(200);
    }
    // An id stored once, whichever path sends it first or again.
    const resent = post({ events: [{ user: 'hv-c', kind: 'click', id: 'same', time: new Date(now - 60_000).toISOString() }] });
    const counts = async (agent: supertest.Agent) => {
      toKoa.length = 0;
      const res = await resent(agent);
      return { toKoa: toKoa.length, body: res.body as unknown };
    };
    expect(await counts(supertest.agent(hot))).toEqual({ toKoa: 0, body: { accepted: 1, duplicates: 0, rejected: [] } });
    expect(await counts(supertest.agent(koaOnly))).toMatchObject({ body: { accepted: 0, duplicates: 1, rejected: [] } });
    expect(await counts(supertest.agent(hot))).toEqual({ toKoa: 0, body: { accepted: 0, duplicates: 1, rejected: [] } });
    const stored = await t.db.sql`
      select user_id, kind, page, country, props ->> 'plan' as plan, count(*)::int as n
      from events where user_id like 'hv-%' group by 1, 2, 3, 4, 5 order by 1
    `;
    expect(stored.map((r) => `${r.user_id} ${r.kind} ${r.page} ${r.country} ${r.plan} ${r.n}`)).toEqual([
      'hv-a pageview /a null null 2',
      'hv-b pageview /b DE pro 2',
      'hv-c click  null null 1', // the id repeated: stored once
      'hv-d click  null null 2',
    ]);
  });

  it('answers the errors of a known key as Koa does', async () => {
    const errors: [string, (h: supertest.Agent) => supertest.Test, number][] = [
      ['not JSON', (h) => h.post('/v1/events').set('Authorization', `Bearer ${ingestKey}`).type('json').send('{"events": ['), 400],
      ['every event invalid', post({ events: [{ user: 'u', kind: '' }] }), 400],
      ['not an object', post([1, 2]), 400],
      ['another site', post({ events: [{ user: 'u', kind: 'click', site: 'elsewhere' }] }), 403],
      ['a read key', post({ events: [{ user: 'u', kind: 'click' }] }, readKey), 403],
      [
        'not JSON by its type',
        (h) => h.post('/v1/events').set('Authorization', `Bearer ${ingestKey}`).type('image/png').send(Buffer.from('x')),
        415,
      ],
      [
        'too many events',
        post({ events: Array.from({ length: 10_001 }, (_, i) => ({ user: `u${i}`, kind: 'click' })) }),
        413,
      ],
    ];
    // A key is known to an instance for a second after it looked it up (CACHE_TTL_MS in
    // src/v1/auth/keys.ts): each case's key is looked up (by Koa) just before the case, or
    // a slow machine lets it lapse between two cases and the hot path rightly hands over.
    const warm = (key: string) => post({ events: [] }, key)(supertest.agent(koaOnly));
    for (const [name, send, status] of errors) {
      await warm(name === 'a read key' ? readKey : ingestKey);
      const r = await both(send);
      expect(r.hotToKoa, name).toBe(false);
      expect(r.res.status, name).toBe(status);
      expect(r.res.body.error.code, name).toEqual(expect.any(String));
    }
  });

  it('leaves to Koa what needs it: CORS, a beacon key, no key, a malformed or unknown key, other methods', async () => {
    const others: [string, (h: supertest.Agent) => supertest.Test][] = [
      ['with an Origin', (h) => post({ events: [{ user: 'o', kind: 'click' }] })(h).set('Origin', 'https://shop.example')],
      ['?key=', (h) => h.post(`/v1/events?key=${ingestKey}`).send({ events: [{ user: 'q', kind: 'click' }] })],
      ['no key', (h) => h.post('/v1/events').send({ events: [{ user: 'n', kind: 'click' }] })],
      ['not Bearer', (h) => h.post('/v1/events').set('Authorization', 'Basic abc').send({ events: [] })],
      ['unknown key', post({ events: [{ user: 'k', kind: 'click' }] }, 'hc_unknownunknownunknownunknownunknownunknown0')],
      ['OPTIONS', (h) => h.options('/v1/events')],
      ['GET', (h) => h.get('/v1/events').set('Authorization', `Bearer ${ingestKey}`)],
    ];
    for (const [name, send] of others) expect((await both(send)).hotToKoa, name).toBe(true);
  });

  it('keeps tracker events (no user) as Koa does: the same visitor id from the same address and agent', async () => {
    const tracked = (h: supertest.Agent) =>
      post({ events: [{ kind: 'pageview', page: '/t', screen_width: 1280 }] })(h).set(
        'User-Agent',
        'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36',
      );
    const r = await both(tracked);
    expect(r.hotToKoa).toBe(false);
    const ids = await t.db.sql`select user_id, device from events where page = '/t'`;
    expect(ids).toHaveLength(2);
    expect(ids[0]!.user_id).toBe(ids[1]!.user_id);
    expect(ids[0]!.device).toBe('desktop');
  });
});
