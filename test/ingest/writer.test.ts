import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createSql } from '../../src/db/client.js';
import { freePort } from '../../src/db/local-cluster.js';
import { DatabaseUnavailable } from '../../src/db/errors.js';
import { EventsRejected, QueueFull, ShuttingDown } from '../../src/ingest/errors.js';
import { type EventRow, GroupCommitWriter, type WriterOptions } from '../../src/ingest/writer.js';
import { silentLogger } from '../../src/log.js';
import supertest from 'supertest';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { prng } from '../helpers/events.js';

const options: WriterOptions = {
  maxBatchRows: 5000,
  maxQueueRows: 100_000,
  flushDelayMs: 0,
  maxInflightFlushes: 2,
  parallelFlushMinRows: 256,
  maxQueueBytes: 64 * 1024 * 1024,
  deadlineMs: 1500,
};
const row = (userId: string, kind = 'collect'): EventRow => ({
  site: 'default',
  timeMs: Date.now(),
  kind,
  userId,
  page: '',
  weight: 1,
});

// The writer does not depend on the storage mode; postgres mode is always available.
describe('group-commit writer', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('postgres');
  });
  afterAll(async () => db?.drop());
  beforeEach(async () => db.reset());
  const stored = async () => (await db.sql`select count(*)::int as n from events`)[0]!.n as number;

  it('commits durably even where the database defaults to synchronous_commit = off', async () => {
    const dbName = new URL(db.url).pathname.slice(1);
    await db.sql`alter database ${db.sql(dbName)} set synchronous_commit = off`;
    const fresh = createSql(db.url, { max: 1 });
    try {
      const [row] = await fresh`show synchronous_commit`;
      expect(row?.synchronous_commit).toBe('on');
    } finally {
      await fresh.end();
      await db.sql`alter database ${db.sql(dbName)} reset synchronous_commit`;
    }
  });

  it('commits concurrent requests together, in far fewer statements than requests', async () => {
    const writer = new GroupCommitWriter(db.sql, options, silentLogger);
    await Promise.all(Array.from({ length: 500 }, (_, i) => writer.write([row(`u${i}`)])));
    expect(await stored()).toBe(500);
    expect(writer.stats.rows).toBe(500);
    expect(writer.stats.batches).toBeLessThan(10);
  });

  it('runs concurrent flushes that update the same aggregate rows without deadlocks', async () => {
    // Batches of different sizes over different sets of the same rows: without one lock
    // order, two flushes upserting them deadlock within a few hundred batches.
    const writer = new GroupCommitWriter(
      db.sql,
      { ...options, maxBatchRows: 40, maxInflightFlushes: 4, parallelFlushMinRows: 0 },
      silentLogger,
    );
    const rand = prng(7);
    const requests = Array.from({ length: 3000 }, () =>
      Array.from({ length: 1 + Math.floor(rand() * 8) }, () => ({
        site: 'default',
        timeMs: Date.now() - Math.floor(rand() * 2) * 3_600_000,
        kind: 'pageview',
        userId: null,
        page: `/p${Math.floor(rand() * 40)}`,
        weight: 1,
      })),
    );
    await Promise.all(requests.map((rows) => writer.write(rows)));
    const total = requests.reduce((n, rows) => n + rows.length, 0);
    expect(writer.stats.failedBatches).toBe(0);
    expect(await stored()).toBe(total);
    const [row] = await db.sql`select sum(events)::int as n from events_hourly`;
    expect(row?.n).toBe(total);
  });

  for (const [minRows, queued, batches] of [
    [256, 20, 2],
    [0, 10, 3],
  ] as const) {
    it(`with parallelFlushMinRows ${minRows}, a few rows ${minRows ? 'wait for the flush in progress' : 'start a second flush'}`, async () => {
      const writer = new GroupCommitWriter(
        db.sql,
        { ...options, maxInflightFlushes: 2, parallelFlushMinRows: minRows },
        silentLogger,
      );
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
      // Every insert waits while another transaction holds this lock: flushes stay in flight.
      const blocker = await db.sql.reserve();
      await blocker`begin`;
      await blocker`lock table events in share mode`;
      const writes = [writer.write([row('first')])];
      await sleep(50);
      for (let i = 0; i < 10; i++) writes.push(writer.write([row(`a${i}`)]));
      await sleep(50);
      for (let i = 0; i < 10; i++) writes.push(writer.write([row(`b${i}`)]));
      await sleep(50);
      expect(writer.stats.queuedRows).toBe(queued);
      await blocker`commit`;
      blocker.release();
      await Promise.all(writes);
      expect(writer.stats.batches).toBe(batches);
      expect(await stored()).toBe(21);
    });
  }

  it('stores each time to the millisecond, sent as epoch milliseconds', async () => {
    const writer = new GroupCommitWriter(db.sql, options, silentLogger);
    const times = [Date.UTC(2026, 10, 23, 10, 0, 0, 123), Date.UTC(2026, 10, 23, 23, 59, 59, 999), Date.now()];
    await writer.write(times.map((timeMs, i) => ({ ...row(`ms${i}`), timeMs })));
    const storedTimes = await db.sql`select time from events order by user_id`;
    expect(storedTimes.map((r) => (r.time as Date).getTime())).toEqual(times);
  });

  it('stores each row its own site, kind, page and weight, whether a batch holds one value of each or several', async () => {
    const writer = new GroupCommitWriter(db.sql, options, silentLogger);
    const same = Array.from({ length: 3 }, (_, i) => ({ ...row(`same${i}`), page: '/a', weight: 2 }));
    // Each column differs in one row only: the first, the middle or the last.
    const mixed = [
      { ...row('mixed0'), kind: 'click', page: '/a', weight: 2 },
      { ...row('mixed1'), site: 'other', page: '/a', weight: 3 },
      { ...row('mixed2'), page: '/b', weight: 2 },
    ];
    await writer.write(same);
    await writer.write(mixed);
    const got = await db.sql`select site, kind, page, weight, user_id from events order by user_id`;
    const want = [...mixed, ...same].map((r) => ({
      site: r.site,
      kind: r.kind,
      page: r.page,
      weight: r.weight,
      user_id: r.userId,
    }));
    expect(got.map((r) => ({ ...r }))).toEqual(want);
  });

  it('splits a backlog into batches of whole requests no larger than maxBatchRows', async () => {
    const writer = new GroupCommitWriter(db.sql, { ...options, maxBatchRows: 100 }, silentLogger);
    await Promise.all(Array.from({ length: 50 }, (_, i) => writer.write([row(`a${i}`), row(`b${i}`), row(`c${i}`)])));
    expect(await stored()).toBe(150);
    expect(writer.stats.batches).toBeGreaterThanOrEqual(2);
  });

  it('refuses with QueueFull when the queue is full, and stores exactly what it acknowledged', async () => {
    const writer = new GroupCommitWriter(db.sql, { ...options, maxQueueRows: 5 }, silentLogger);
    const results = await Promise.allSettled(Array.from({ length: 60 }, (_, i) => writer.write([row(`u${i}`)])));
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    for (const r of refused) {
      expect(r.reason).toBeInstanceOf(QueueFull);
    }
    expect(await stored()).toBe(results.length - refused.length);
  });

  it('keeps a multi-event request whole: one bad event fails it alone, the rest of the batch commits', async () => {
    const writer = new GroupCommitWriter(db.sql, options, silentLogger);
    const results = await Promise.allSettled([
      writer.write([row('good-1')]),
      writer.write([row('bad-1'), row('bad-2', 'Not A Kind')]),
      writer.write([row('good-2'), row('good-3')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(EventsRejected);
    const users = (await db.sql`select user_id from events order by user_id`).map((r) => r.user_id);
    expect(users).toEqual(['good-1', 'good-2', 'good-3']);
  });

  it('answers every request of a batch the database could not take DatabaseUnavailable, within its deadline', async () => {
    const dead = createSql(`postgres://nobody:x@127.0.0.1:${await freePort()}/nothing`, { max: 1 });
    const writer = new GroupCommitWriter(dead, { ...options, deadlineMs: 300 }, silentLogger);
    const started = Date.now();
    const results = await Promise.allSettled([writer.write([row('a')]), writer.write([row('b')])]);
    expect(Date.now() - started).toBeLessThan(1500);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DatabaseUnavailable);
    }
    expect(writer.stats.failedBatches).toBe(1);
    await dead.end();
  });

  it('flushes everything queued on close, then refuses new writes', async () => {
    const writer = new GroupCommitWriter(db.sql, { ...options, maxBatchRows: 10 }, silentLogger);
    const pending = Array.from({ length: 200 }, (_, i) => writer.write([row(`u${i}`)]));
    await writer.close();
    expect(await stored()).toBe(200);
    await expect(Promise.all(pending)).resolves.toBeDefined();
    await expect(writer.write([row('late')])).rejects.toBeInstanceOf(ShuttingDown);
  });

  it('closes with a flush delay, also when its timer fires on an empty queue, and for every caller', async () => {
    const writer = new GroupCommitWriter(db.sql, { ...options, flushDelayMs: 30 }, silentLogger);
    const first = writer.write([row('x')]);
    const closes = [writer.close(), writer.close()];
    await expect(Promise.all([first, ...closes])).resolves.toBeDefined();
    // A timer that fires with nothing queued (the rows went with an earlier flush).
    const other = new GroupCommitWriter(db.sql, { ...options, flushDelayMs: 30, maxInflightFlushes: 1 }, silentLogger);
    await Promise.all([other.write([row('y')]), other.write([row('z')])]);
    await Promise.race([other.close(), new Promise((_, reject) => setTimeout(() => reject(new Error('close() hung')), 2000))]);
    expect(await stored()).toBe(3);
  });

  it('bounds the queue in bytes as well as in rows', async () => {
    const writer = new GroupCommitWriter(db.sql, { ...options, maxQueueBytes: 20_000, flushDelayMs: 200 }, silentLogger);
    const big = (i: number): EventRow => ({ ...row(`u${i}`), page: 'p'.repeat(2000) });
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => writer.write([big(i)])));
    const refused = results.filter((r) => r.status === 'rejected');
    expect(refused.length).toBeGreaterThanOrEqual(15);
    for (const r of refused) expect(r.reason).toBeInstanceOf(QueueFull);
    expect(await stored()).toBe(20 - refused.length);
    expect(writer.stats.queuedBytes).toBe(0);
  });

  it('turns a full queue into 503 + Retry-After over HTTP', async () => {
    // The first flush waits a second: the queue holds five rows and the rest are refused.
    const writer = new GroupCommitWriter(db.sql, { ...options, maxQueueRows: 5, flushDelayMs: 1000 }, silentLogger);
    const http = supertest(
      createApp({ sql: db.sql, writer, site: 'default', retryAfterSeconds: 2, log: silentLogger }).callback(),
    );
    const responses = await Promise.all(Array.from({ length: 40 }, (_, i) => http.get('/collect').query({ cid: `c${i}` })));
    const refused = responses.filter((r) => r.status === 503);
    const ok = responses.filter((r) => r.status === 200);
    expect(ok.length + refused.length).toBe(40);
    expect(ok.length).toBeLessThanOrEqual(5);
    expect(refused.length).toBeGreaterThanOrEqual(35);
    expect(refused[0]!.headers['retry-after']).toBe('2');
    expect(refused[0]!.body.error.code).toBe('ingest_queue_full');
    expect(await stored()).toBe(ok.length);
  });
});
