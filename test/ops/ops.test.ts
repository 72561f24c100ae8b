import http from 'node:http';
import { Writable } from 'node:stream';
import supertest from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp, createService } from '../../src/app.js';
import { createSql } from '../../src/db/client.js';
import { applySqlObjects } from '../../src/db/sql-objects.js';
import { GroupCommitWriter } from '../../src/ingest/writer.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { JobHealth } from '../../src/db/job-health.js';
import { Readiness } from '../../src/ops/probes.js';
import { Rejections } from '../../src/ops/rejections.js';
import { startTestApp, testRuntimeConfig, type TestApp, useTestApp } from '../helpers/app.js';
import { createEmptyDatabase, createTestDatabase, describeEachModeWithCitus } from '../helpers/db.js';
import { request, startServer } from '../helpers/server.js';
import { freePort } from '../../src/db/local-cluster.js';
import { TcpProxy } from '../helpers/proxy.js';

/** A logger whose lines land in `lines`, parsed. */
function capturedLogger(): { log: ReturnType<typeof createLogger>; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: createLogger('info', {}, stream), lines };
}

/** The value of one series of a Prometheus text exposition (undefined when absent). */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** The message of the overload summary (src/ops/rejections.ts). */
const SUMMARY = 'requests refused with 503 (counts since the last such line)';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeEachModeWithCitus('GET /metrics', (mode) => {
  const t = useTestApp(mode, { resetEach: false });

  it('counts requests by route pattern and status, flushes, batch sizes and acknowledged events', async () => {
    for (const cid of ['a', 'b', 'c']) expect((await t.http.get('/collect').query({ cid })).status).toBe(200);
    expect((await t.http.get('/collect')).status).toBe(400);
    expect((await t.http.get('/no/such/thing')).status).toBe(404);
    const res = await t.http.get('/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.text;
    expect(sample(text, 'headcount_http_request_duration_seconds_count{method="GET",route="/collect",status="200"}')).toBe(3);
    expect(sample(text, 'headcount_http_request_duration_seconds_count{method="GET",route="/collect",status="400"}')).toBe(1);
    // Unknown paths share one series: a scanner cannot blow up the number of series.
    expect(sample(text, 'headcount_http_request_duration_seconds_count{method="GET",route="unmatched",status="404"}')).toBe(1);
    expect(sample(text, 'headcount_ingest_events_acknowledged_total')).toBe(3);
    expect(sample(text, 'headcount_ingest_flush_duration_seconds_count{outcome="ok"}')).toBe(3);
    expect(sample(text, 'headcount_ingest_batch_rows_sum')).toBe(3);
    expect(sample(text, 'headcount_ingest_queue_rows')).toBe(0);
    expect(sample(text, 'headcount_requests_rejected_total{reason="invalid"}')).toBe(2);
    expect(sample(text, 'headcount_requests_rejected_total{reason="queue_full"}')).toBe(0);
  });

  if (mode === 'timescaledb') {
    it('reports refresh passes and the seconds since the last one', async () => {
      await t.materialize();
      const text = (await t.http.get('/metrics')).text;
      expect(sample(text, 'headcount_refresh_duration_seconds_count{outcome="ok"}')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'headcount_refresh_lag_seconds')).toBeLessThan(5);
      expect(text).not.toContain('headcount_partition_maintenance_runs_total{outcome="ok"} 1');
    });
  } else {
    it('reports partition maintenance runs and no refresh lag (there is no refresher)', async () => {
      const text = (await t.http.get('/metrics')).text;
      expect(sample(text, 'headcount_partition_maintenance_runs_total{outcome="ok"}')).toBe(1);
      expect(sample(text, 'headcount_partition_maintenance_failures_total')).toBe(0);
      expect(text).not.toContain('headcount_refresh_lag_seconds');
    });
  }
});

describe('GET /metrics, guarded (METRICS_TOKEN, METRICS_LISTEN)', () => {
  const token = 'metrics-token-0123456789';

  it('needs the bearer token when METRICS_TOKEN is set, and stays open by default', async () => {
    const t = await startTestApp('postgres');
    try {
      const open = createService({ sql: t.db.sql, writer: t.runtime.writer, site: 'default', log: silentLogger });
      expect((await supertest(open.listener()).get('/metrics')).status).toBe(200);
      const guarded = createService({
        sql: t.db.sql,
        writer: t.runtime.writer,
        site: 'default',
        log: silentLogger,
        metricsExposure: { listen: undefined, token },
      });
      const guardedHttp = supertest(guarded.listener());
      for (const authorization of [undefined, 'Bearer wrong-token-0123456789', `Basic ${token}`, `Bearer ${token}x`]) {
        const req = guardedHttp.get('/metrics');
        const res = await (authorization ? req.set('Authorization', authorization) : req);
        expect(res.status, authorization).toBe(401);
        expect(res.body.error.code).toBe('missing_metrics_token');
        expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
      }
      const res = await guardedHttp.get('/metrics').set('Authorization', `Bearer ${token}`);
      expect(res.status).toBe(200);
      expect(res.text).toContain('headcount_info');
    } finally {
      await t.close();
    }
  });

  it('serves /metrics only on METRICS_LISTEN when it is set, and nothing else there', async () => {
    const db = await createTestDatabase('postgres');
    const metricsPort = await freePort();
    const server = await startServer({
      DATABASE_URL: db.url,
      METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
      METRICS_TOKEN: token,
    });
    const agent = new http.Agent({ keepAlive: false });
    try {
      expect((await request(agent, server.port, 'GET', '/metrics')).status).toBe(404);
      expect((await request(agent, server.port, 'GET', '/livez')).status).toBe(200);
      const refused = await request(agent, metricsPort, 'GET', '/metrics');
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body)).toMatchObject({ error: { code: 'missing_metrics_token' } });
      const scraped = await request(agent, metricsPort, 'GET', '/metrics', undefined, { Authorization: `Bearer ${token}` });
      expect(scraped.status).toBe(200);
      expect(scraped.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
      expect(scraped.body).toContain('headcount_info');
      expect((await request(agent, metricsPort, 'GET', '/livez')).status).toBe(404);
      expect((await request(agent, metricsPort, 'POST', '/metrics', '{}')).status).toBe(405);
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
      await db.drop();
    }
  });
});

describe('overload', () => {
  it('counts every 503 and logs one summary line per second, not a line per refused request', async () => {
    const t = await startTestApp('postgres', {
      // Rows wait 300 ms for their flush: a queue of 1 row refuses the 2nd concurrent request.
      ingest: { ...testRuntimeConfig.ingest, maxQueueRows: 1, flushDelayMs: 300 },
    });
    const { log, lines } = capturedLogger();
    // The listener the server runs: GET /collect takes the hot route (src/hot-routes.ts).
    const http = supertest(
      createService({ sql: t.db.sql, writer: t.runtime.writer, metrics: t.runtime.metrics, site: 'default', log }).listener(),
    );
    try {
      const statuses = (
        await Promise.all(Array.from({ length: 20 }, (_, i) => http.get('/collect').query({ cid: `u${i}` })))
      ).map((r) => r.status);
      const refused = statuses.filter((s) => s === 503).length;
      expect(refused).toBeGreaterThanOrEqual(10);
      const text = (await http.get('/metrics')).text;
      expect(sample(text, 'headcount_requests_rejected_total{reason="queue_full"}')).toBe(refused);
      // The summary comes a second after the first refusal: polled for, not slept on. How
      // many lines a second is the unit test's business (Rejections, below).
      const summaries = () => lines.filter((l) => l.msg === SUMMARY);
      const summarised = () => summaries().reduce((n, l) => n + ((l.refused as { queue_full?: number }).queue_full ?? 0), 0);
      await vi.waitFor(() => expect(summarised()).toBe(refused), { timeout: 20_000, interval: 50 });
      expect(summaries().length).toBeLessThan(refused);
      for (const line of summaries()) expect(Object.keys(line.refused as object)).toEqual(['queue_full']);
      expect(lines.filter((l) => l.level === 'error')).toHaveLength(0);
    } finally {
      await t.close();
    }
  });
});

describe('Rejections', () => {
  afterEach(() => vi.useRealTimers());

  it('logs one summary line per interval with the counts since the last, however many it refused', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { log, lines } = capturedLogger();
    const metrics = new Metrics();
    const rejections = new Rejections(metrics, log, 1000);
    for (let i = 0; i < 50; i++) rejections.unavailable('ingest_queue_full');
    rejections.unavailable('database_unavailable', new Error('connection refused'));
    rejections.invalid(); // a 4xx: counted, never logged
    vi.advanceTimersByTime(999);
    expect(lines).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      msg: SUMMARY,
      level: 'warn',
      refused: { queue_full: 50, database_unavailable: 1 },
      err: { message: 'connection refused' },
    });

    vi.advanceTimersByTime(10_000); // nothing refused: nothing to say
    expect(lines).toHaveLength(1);
    rejections.unavailable('shutting_down');
    vi.advanceTimersByTime(1000);
    expect(lines).toHaveLength(2);
    expect(lines[1]).toMatchObject({ refused: { shutting_down: 1 } });
    expect(lines[1]).not.toHaveProperty('err');
  });
});

describe('request ids and logs', () => {
  let t: TestApp;
  const { log, lines } = capturedLogger();
  let http: ReturnType<typeof supertest>;
  beforeAll(async () => {
    t = await startTestApp('postgres');
    const app = createApp({ sql: t.db.sql, writer: t.runtime.writer, site: 'default', log, logRequests: true });
    // A route that fails the way a bug does: an error with a cause.
    app.use((ctx) => {
      if (ctx.path === '/boom') throw new Error('boom', { cause: Object.assign(new Error('the root cause'), { code: 'XX000' }) });
    });
    http = supertest(app.callback());
  });
  afterAll(async () => t?.close());

  it('keeps a short printable X-Request-Id, replaces any other, and sends it back', async () => {
    expect((await http.get('/livez').set('X-Request-Id', 'lb-7f3a.91')).headers['x-request-id']).toBe('lb-7f3a.91');
    for (const bad of ['has spaces', 'x'.repeat(129), 'tab\there']) {
      const id = (await http.get('/livez').set('X-Request-Id', bad)).headers['x-request-id'];
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect((await http.get('/livez')).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('logs a 500 with its stack and cause chain, and every line of the request carries its id', async () => {
    const res = await http.get('/boom').set('X-Request-Id', 'req-500');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: { code: 'internal', message: 'internal error' } });
    const mine = lines.filter((l) => l.reqId === 'req-500');
    const failure = mine.find((l) => l.msg === 'request failed');
    const err = failure?.err as { message: string; stack: string; cause: { message: string; code: string } };
    expect(err.stack).toContain('Error: boom');
    expect(err.cause).toMatchObject({ message: 'the root cause', code: 'XX000' });
    // The access log line (LOG_REQUESTS=true) of the same request.
    const access = mine.find((l) => l.msg === 'request errored' || l.msg === 'request completed');
    expect(access).toMatchObject({ level: 'warn', res: { statusCode: 500 } });
    expect(JSON.stringify(access)).not.toContain('headers');
  });

  it('never logs a key, not even one sent as ?key= in the URL of a beacon', async () => {
    const key = 'hck_' + 'Q'.repeat(43);
    const res = await http.post(`/v1/events?site=shop&key=${key}&x=1`).set('X-Request-Id', 'req-key').send({ events: [] });
    expect(res.status).toBe(401);
    const mine = lines.filter((l) => l.reqId === 'req-key');
    expect(mine.find((l) => l.msg === 'request completed')).toMatchObject({
      req: { url: '/v1/events?site=shop&key=[redacted]&x=1' },
    });
    expect(JSON.stringify(lines)).not.toContain(key.slice(4));
  });

  it('redacts a key by the parameter name the application reads, however it is encoded (k%65y=, %6B%65%79=)', async () => {
    const key = 'hck_' + 'R'.repeat(43);
    for (const [id, name] of [
      ['req-key-escaped', 'k%65y'],
      ['req-key-all-escaped', '%6B%65%79'],
    ] as const) {
      const res = await http.post(`/v1/events?site=shop&${name}=${key}&x=1`).set('X-Request-Id', id).send({ events: [] });
      // The key was read (and refused as unknown), not ignored as another parameter.
      expect(res.body).toMatchObject({ error: { code: 'invalid_key' } });
      expect(lines.find((l) => l.reqId === id && l.msg === 'request completed')).toMatchObject({
        req: { url: `/v1/events?site=shop&${name}=[redacted]&x=1` },
      });
    }
    expect(JSON.stringify(lines)).not.toContain(key.slice(4));
  });

  it('writes no access log line when LOG_REQUESTS is off', async () => {
    const quiet = capturedLogger();
    const app = createApp({ sql: t.db.sql, writer: t.runtime.writer, site: 'default', log: quiet.log });
    expect((await supertest(app.callback()).get('/livez')).status).toBe(200);
    expect(quiet.lines).toEqual([]);
  });
});

describe('GET /livez and /readyz', () => {
  const t = useTestApp('postgres', { resetEach: false });

  it('answers 200 when migrated, reachable, jobs healthy and not draining', async () => {
    expect((await t.http.get('/livez')).body).toEqual({ status: 'ok' });
    const ready = await t.http.get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ status: 'ok' });
  });

  it('answers 503 draining once shutdown began', async () => {
    const readiness = new Readiness();
    const app = createApp({ sql: t.db.sql, writer: t.runtime.writer, readiness, site: 'default', log: silentLogger });
    readiness.draining = true;
    const res = await supertest(app.callback()).get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('draining');
    expect((await supertest(app.callback()).get('/livez')).status).toBe(200);
  });

  it('answers 503 when a background job failed three runs in a row, and 200 after it succeeds; /health says degraded meanwhile', async () => {
    const job = new JobHealth('aggregate refresh', silentLogger);
    const jobs = () => [job.status()];
    const http = supertest(
      createApp({
        sql: t.db.sql,
        writer: t.runtime.writer,
        readiness: new Readiness(jobs),
        jobs,
        site: 'default',
        log: silentLogger,
      }).callback(),
    );
    expect((await http.get('/health')).body).toEqual({ status: 'ok' });
    job.failed(new Error('boom'));
    job.failed(new Error('boom'));
    expect((await http.get('/readyz')).status).toBe(200);
    const health = await http.get('/health');
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ status: 'degraded', jobs: [{ job: 'aggregate refresh', ok: false, lastError: 'boom' }] });
    job.failed(new Error('boom'));
    const res = await http.get('/readyz');
    expect(res.status).toBe(503);
    expect(res.body.error).toMatchObject({
      code: 'background_job_failing',
      message: expect.stringMatching(/^aggregate refresh/),
    });
    job.succeeded();
    expect((await http.get('/readyz')).status).toBe(200);
    expect((await http.get('/health')).body).toEqual({ status: 'ok' });
  });

  it('answers 503 not_migrated on a database without the migrations', async () => {
    const empty = await createEmptyDatabase();
    try {
      const writer = new GroupCommitWriter(empty.sql, testRuntimeConfig.ingest, silentLogger);
      const res = await supertest(createApp({ sql: empty.sql, writer, site: 'default', log: silentLogger }).callback()).get(
        '/readyz',
      );
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('not_migrated');
      expect(res.body.error.message).toContain('1763870400000_storage');
    } finally {
      await empty.drop();
    }
  });

  it('answers 503 not_migrated while the SQL objects of sql/ are not applied as this build ships them', async () => {
    const db = await createTestDatabase('postgres');
    try {
      const writer = new GroupCommitWriter(db.sql, testRuntimeConfig.ingest, silentLogger);
      const http = supertest(createApp({ sql: db.sql, writer, site: 'default', log: silentLogger }).callback());
      expect((await http.get('/readyz')).status).toBe(200);
      // As a database an older build migrated: another headcount_stats.
      await db.sql`update headcount_sql_objects set sha256 = 'older' where name = 'headcount_stats'`;
      const res = await http.get('/readyz');
      expect(res.status).toBe(503);
      expect(res.body.error).toEqual({
        code: 'not_migrated',
        message: 'SQL objects not applied as shipped: headcount_stats (npm run migrate -- up)',
      });
      expect(await applySqlObjects(db.sql)).toContain('sql/common/headcount_stats.sql');
      expect((await http.get('/readyz')).status).toBe(200);
    } finally {
      await db.drop();
    }
  });

  it('goes 503 during a database outage and back to 200 when the database returns', async () => {
    const proxy = await TcpProxy.to(t.db.url);
    await proxy.resume();
    const sql = createSql(proxy.via(t.db.url), { max: 2 });
    const http = supertest(createApp({ sql, writer: t.runtime.writer, site: 'default', log: silentLogger }).callback());
    try {
      expect((await http.get('/readyz')).status).toBe(200);
      await proxy.pause();
      const during = await http.get('/readyz');
      expect(during.status).toBe(503);
      expect(during.body.error.code).toBe('database_unavailable');
      await proxy.resume();
      const deadline = Date.now() + 20_000;
      let status = 0;
      while (status !== 200 && Date.now() < deadline) {
        status = (await http.get('/readyz')).status;
        if (status !== 200) await sleep(200);
      }
      expect(status).toBe(200);
    } finally {
      await sql.end({ timeout: 1 });
      await proxy.pause();
    }
  });
});

describe('the metrics registry', () => {
  it('adds the default process metrics only when asked', async () => {
    expect(await new Metrics().registry.metrics()).not.toContain('process_cpu_user_seconds_total');
    const withProcess = new Metrics({ processMetrics: true });
    expect(await withProcess.registry.metrics()).toContain('process_cpu_user_seconds_total');
    withProcess.registry.clear();
  });
});
