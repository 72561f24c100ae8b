import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSql } from '../../src/db/client.js';
import { insertEvents } from '../../src/ingest/writer.js';
import { HOUR_MS } from '../../src/time.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { describeEachMode } from '../helpers/db.js';
import { thisHour } from '../helpers/time.js';

const COLLECTS = 300;
const HEAVY_CLIENTS = 10;

/**
 * Issue 17, item 3: ten clients of one read key asking for heavy stats at once must not
 * slow ingest down. The app runs as the tests run it (a pool of 5, default STATS_* bounds,
 * /v1 without keys: every request counts as one client address).
 */
describeEachMode('ten concurrent heavy stats queries', (mode) => {
  let t: TestApp;
  const to = thisHour();
  const from = to - 47 * HOUR_MS;
  beforeAll(async () => {
    t = await startTestApp(mode);
    // 1,000 pages over 47 hours: a minute series of them is 2.8 million rows, an hourly one 47,000.
    const rows = Array.from({ length: 20_000 }, (_, i) => ({
      site: 'default',
      timeMs: from + (i % 2800) * 60_000,
      kind: 'view',
      userId: `u${i % 500}`,
      page: `/p${i % 1000}`,
      weight: 1,
    }));
    for (let i = 0; i < rows.length; i += 5000) await insertEvents(t.db.sql, rows.slice(i, i + 5000));
  });
  afterAll(async () => t?.close());

  const range = { from: new Date(from).toISOString(), to: new Date(to).toISOString() };

  it('refuses the most expensive shape with 400, saying what to ask instead', async () => {
    const res = await t.http.get('/v1/stats').query({ ...range, granularity: 'minute', group_by: 'page', limit: 1000 });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('too_expensive');
    expect(res.body.error.message).toMatch(/2,820,000 rows.*at most 100,000.*granularity=hour \(about 47,000 rows\)/);
    expect(res.body.error.details).toEqual([{ parameter: 'granularity', message: res.body.error.message }]);
  });

  it('keeps /collect under 250 ms at the 99th percentile, never 503, while they run', { timeout: 120_000 }, async () => {
    // Hourly, 1,000 pages: under the cost guard, yet seconds of a core each.
    const heavy = { ...range, granularity: 'hour', group_by: 'page', limit: 1000 };
    let stop = false;
    const statuses = new Map<string, number>();
    const client = async () => {
      while (!stop) {
        // Answers of 47,000 rows are counted, not parsed: this process measures /collect too.
        const res = await t.http
          .get('/v1/stats')
          .query(heavy)
          .buffer(true)
          .parse((stream, done) => {
            let text = '';
            stream.on('data', (chunk: Buffer) => {
              if (stream.statusCode !== 200) text += chunk.toString();
            });
            stream.on('end', () => done(null, text));
          });
        const key =
          res.status === 200
            ? '200'
            : `${res.status} ${(JSON.parse(res.body as string) as { error: { code: string } }).error.code}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        // A refused client comes back soon (not in a tight loop, which would measure this
        // process's CPU rather than the service's isolation).
        if (res.status !== 200) await new Promise((r) => setTimeout(r, 100));
      }
    };
    const clients = Array.from({ length: HEAVY_CLIENTS }, client);
    // The heavy queries are under way: their database sessions are active (asked on a
    // connection of its own, not one of the app's).
    const probe = createSql(t.db.url, { max: 1 });
    for (let i = 0; i < 100; i++) {
      const [active] = await probe<{ n: number }[]>`
        select count(*)::int as n from pg_stat_activity where query like '%v1/stats%' and state = 'active' and pid <> pg_backend_pid()
      `;
      if (active!.n >= 2) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    await probe.end();
    const latencies: number[] = [];
    const collectStatuses = new Map<number, number>();
    for (let i = 0; i < COLLECTS; i++) {
      const started = performance.now();
      const res = await t.http.get('/collect').query({ cid: `c${i}` });
      latencies.push(performance.now() - started);
      collectStatuses.set(res.status, (collectStatuses.get(res.status) ?? 0) + 1);
      await new Promise((r) => setTimeout(r, 10));
    }
    stop = true;
    await Promise.all(clients);
    latencies.sort((a, b) => a - b);
    const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.ceil(q * latencies.length) - 1)]!;
    console.log(
      `${mode} mode: /collect under ${HEAVY_CLIENTS} heavy stats clients: p50 ${at(0.5).toFixed(1)} ms, p99 ${at(0.99).toFixed(1)} ms, ` +
        `max ${at(1).toFixed(1)} ms; /collect statuses ${JSON.stringify(Object.fromEntries(collectStatuses))}; ` +
        `stats statuses ${JSON.stringify(Object.fromEntries(statuses))}`,
    );
    expect(Object.fromEntries(collectStatuses)).toEqual({ 200: COLLECTS });
    // A latency bound the issue asks for: measured over 300 requests on a shared 2-core
    // machine, where the heavy queries keep PostgreSQL's cores busy; an insert that waited
    // for a pooled connection behind them would take seconds (1.07 s p99 on main).
    expect(at(0.99)).toBeLessThanOrEqual(250);
    // Every heavy request was answered, in the envelope where refused: run (200, or 503
    // at its deadline), or refused for want of a slot (429 for this client's share).
    for (const key of statuses.keys())
      expect(key).toMatch(/^(200|429 too_many_concurrent|503 (stats_busy|database_unavailable))$/);
    expect([...statuses.keys()].some((k) => k.startsWith('429'))).toBe(true);
  });
});
