import { afterAll, beforeAll, expect, it } from 'vitest';
import supertest from 'supertest';
import type TestAgent from 'supertest/lib/agent.js';
import { createService } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createSql, type Sql } from '../../src/db/client.js';
import { insertEvents } from '../../src/ingest/writer.js';
import { silentLogger } from '../../src/log.js';
import { type Runtime, startRuntime } from '../../src/runtime.js';
import { HOUR_MS } from '../../src/time.js';
import { createKey } from '../../src/v1/auth/keys.js';
import { testRuntimeConfig } from '../helpers/app.js';
import { createTestDatabase, describeEachModeWithCitus, type TestDatabase } from '../helpers/db.js';
import { thisHour } from '../helpers/time.js';

const PAGES = 1000;
const USERS = 500;
const EVENTS = 20_000;

/**
 * A /v1/stats query that runs into its deadline while its rows stream (issue 17, item 2):
 * on main the deadline cancelled it from the client, and postgres.js 3.4.9 then answered
 * the next query on that connection with holes — /daily_uniques 0, a 429 with tokens
 * left, a 422 for a stored event. Here the service has one pooled connection, so every
 * later read meets whatever the cut left on it.
 */
describeEachModeWithCitus('a stats query cut at its deadline', (mode) => {
  let db: TestDatabase;
  let sql: Sql;
  let runtime: Runtime;
  let http: TestAgent;
  const keys = { read: '', ingest: '' };
  const to = thisHour();
  const from = to - 47 * HOUR_MS;

  beforeAll(async () => {
    db = await createTestDatabase(mode);
    // Stats queries get four times the pool's deadline: 4 s, while the heavy one below
    // takes ~2.5 s before its first row and ~5 s more to stream them all.
    sql = createSql(db.url, { max: 1, deadlineMs: 1000, applicationName: 'headcount-test-deadline' });
    const rows = Array.from({ length: EVENTS }, (_, i) => ({
      site: 'default',
      timeMs: from + (i % 2800) * 60_000,
      kind: 'view',
      userId: `u${i % USERS}`,
      page: `/p${i % PAGES}`,
      weight: 1,
    }));
    for (let i = 0; i < rows.length; i += 5000)
      await insertEvents(db.sql, rows.slice(i, i + 5000), { callInserted: mode === 'citus' });
    runtime = await startRuntime(sql, db.url, testRuntimeConfig, silentLogger);
    const defaults = loadConfig({}).reads;
    const service = createService({
      sql,
      writer: runtime.writer,
      site: 'default',
      log: silentLogger,
      v1Auth: 'keys',
      // Every read asks the database for its token (a lease of one).
      rateLimits: { ingest: { ratePerSecond: 10, burst: 100 }, read: { ratePerSecond: 10, burst: 100 } },
      // The heavy shape is let through the cost guard: the cut is what is tested.
      reads: { ...defaults, stats: { ...defaults.stats, maxRows: 10_000_000 } },
    });
    http = supertest(service.listener());
    keys.read = (await createKey(db.sql, { scope: 'read', site: 'default', name: 'reader' })).key;
    keys.ingest = (await createKey(db.sql, { scope: 'ingest', site: 'default', name: 'writer' })).key;
  });
  afterAll(async () => {
    await runtime?.stop();
    await sql?.end();
    await db?.drop();
  });

  it('leaves the pool answering every later read and write exactly', { timeout: 90_000 }, async () => {
    const heavy = await http
      .get('/v1/stats')
      .set('Authorization', `Bearer ${keys.read}`)
      .query({
        from: new Date(from).toISOString(),
        to: new Date(to).toISOString(),
        granularity: 'minute',
        group_by: 'page',
        limit: 1000,
      });
    expect(heavy.status).toBe(503);
    expect(heavy.body.error.code).toBe('database_unavailable');
    expect(heavy.headers['retry-after']).toBeDefined();

    const day = new Date(to - HOUR_MS).toISOString().slice(0, 10);
    const [expected] = await db.sql<{ n: number }[]>`
      select count(distinct user_id)::int as n from events
      where site = 'default' and time >= ${`${day}T00:00:00Z`}::timestamptz and time < ${`${day}T00:00:00Z`}::timestamptz + interval '1 day'
    `;
    const events = [0, 1, 2].map((i) => ({
      user: `new${i}`,
      kind: 'signup',
      id: `e${i}`,
      time: new Date(from - HOUR_MS + i * 1000).toISOString(),
    }));
    for (let round = 0; round < 3; round++) {
      const daily = await http.get('/daily_uniques').query({ d: day });
      expect(daily.status).toBe(200);
      expect(daily.text).toBe(`${expected!.n}\n`);
      const total = await http
        .get('/v1/stats')
        .set('Authorization', `Bearer ${keys.read}`)
        .query({ from: new Date(from).toISOString(), to: new Date(to).toISOString() });
      expect(total.status).toBe(200);
      expect(total.body.data).toEqual([{ bucket: expect.any(String), users: USERS, events: EVENTS }]);
      const sent = await http.post('/v1/events').set('Authorization', `Bearer ${keys.ingest}`).send({ events });
      expect(sent.status).toBe(200);
      expect(sent.body).toEqual(
        round === 0 ? { accepted: 3, duplicates: 0, rejected: [] } : { accepted: 0, duplicates: 3, rejected: [] },
      );
    }
  });
});
