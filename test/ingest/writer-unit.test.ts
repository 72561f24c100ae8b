import { describe, expect, it } from 'vitest';
import type { Sql } from '../../src/db/client.js';
import { DatabaseUnavailable } from '../../src/db/errors.js';
import { EventsRejected, QueueFull, ShuttingDown, TooManyEvents } from '../../src/ingest/errors.js';
import {
  type EventRow,
  type FlushGroupOf,
  type FlushOutcome,
  GroupCommitWriter,
  type StoredAnswer,
  type WriterOptions,
} from '../../src/ingest/writer.js';
import { silentLogger } from '../../src/log.js';

/*
 * The writer's own logic (batching, bisecting, backpressure, close) with the insert
 * statement replaced by a function of the test: no database. What only PostgreSQL can
 * show (the statement, durability, duplicates by id) is test/ingest/writer.test.ts's.
 */

const OPTIONS: WriterOptions = {
  maxBatchRows: 100,
  maxQueueRows: 1000,
  maxQueueBytes: 1024 * 1024,
  flushDelayMs: 0,
  maxInflightFlushes: 1,
  parallelFlushMinRows: 0,
  deadlineMs: 5000,
};

const row = (userId: string, kind = 'collect', id?: string): EventRow => ({
  site: 'default',
  timeMs: Date.UTC(2026, 0, 1),
  kind,
  userId,
  page: '',
  weight: 1,
  ...(id === undefined ? {} : { id }),
});

/** An error as postgres.js raises it, with a SQLSTATE. */
const pgError = (code: string): Error => Object.assign(new Error(`sqlstate ${code}`), { code });

/** A stored row's key, as the statement reports it. */
interface StoredKey {
  site: string;
  id: string;
  time: Date;
}

interface Call {
  rows: EventRow[];
  /** Settles the statement: the keys it stored, or an error. */
  succeed(keys?: StoredKey[]): void;
  fail(err: Error): void;
  cancelled: boolean;
}

/**
 * A writer whose every statement is a Call the test settles (or `answer` settles at
 * once). The writer never touches `sql`: its insert is injected.
 */
function writerWith(options: Partial<WriterOptions> = {}, answer?: (call: Call) => void, groupOf?: FlushGroupOf) {
  const calls: Call[] = [];
  const flushes: FlushOutcome[] = [];
  const neverUsed = {} as Sql;
  const writer = new GroupCommitWriter(
    neverUsed,
    { ...OPTIONS, ...options },
    silentLogger,
    (f) => flushes.push(f),
    (rows) => {
      let settle!: { resolve: (answer: StoredAnswer) => void; reject: (err: Error) => void };
      const promise = new Promise<StoredAnswer>((resolve, reject) => (settle = { resolve, reject }));
      const call: Call = {
        rows,
        // As insertEvents answers: no row for a batch without ids, else one row of keys.
        succeed: (keys = []) =>
          settle.resolve(
            rows.some((r) => r.id !== undefined) ? [{ keys: keys.map((k) => [k.site, k.id, k.time.getTime()]) }] : [],
          ),
        fail: (err) => settle.reject(err),
        cancelled: false,
      };
      calls.push(call);
      answer?.(call);
      return Object.assign(promise, {
        cancel: () => {
          call.cancelled = true;
          settle.reject(pgError('57014')); // query_canceled, as the server answers
        },
      });
    },
    groupOf,
  );
  return { writer, calls, flushes };
}

/** Waits until `n` statements were sent (the writer flushes on setImmediate). */
async function sent(calls: Call[], n: number): Promise<void> {
  for (let turn = 0; calls.length < n; turn++) {
    if (turn > 1000) throw new Error(`expected ${n} statements, got ${calls.length}`);
    await new Promise((r) => setImmediate(r));
  }
}

const users = (call: Call | undefined) => call?.rows.map((r) => r.userId);

describe('GroupCommitWriter without a database', () => {
  it('sends the requests of one turn of the event loop in one statement, and answers each its own rows', async () => {
    const { writer, calls, flushes } = writerWith({}, (call) => call.succeed());
    const results = await Promise.all([writer.write([row('a')]), writer.write([row('b'), row('c')]), writer.write([row('d')])]);
    expect(calls.map(users)).toEqual([['a', 'b', 'c', 'd']]);
    expect(results).toEqual([{ inserted: 1 }, { inserted: 2 }, { inserted: 1 }]);
    expect(flushes).toEqual([expect.objectContaining({ rows: 4, requests: 3, ok: true })]);
    expect(writer.stats).toMatchObject({ batches: 1, rows: 4, failedBatches: 0 });
  });

  it('fills a batch up to maxBatchRows with whole requests; a larger request goes alone, never split', async () => {
    const { writer, calls } = writerWith({ maxBatchRows: 3 }, (call) => call.succeed());
    await Promise.all([
      writer.write([row('a')]),
      writer.write([row('b')]),
      writer.write([row('c'), row('d')]), // would make 4: waits for the next batch
      writer.write([row('e'), row('f'), row('g'), row('h')]), // alone, whole
      writer.write([row('i')]),
    ]);
    expect(calls.map(users)).toEqual([['a', 'b'], ['c', 'd'], ['e', 'f', 'g', 'h'], ['i']]);
  });

  it('sends what queued during a flush in the next one, as soon as it ends', async () => {
    const { writer, calls } = writerWith();
    const first = writer.write([row('a')]);
    await sent(calls, 1);
    const later = [writer.write([row('b')]), writer.write([row('c')])];
    await new Promise((r) => setImmediate(r));
    expect(calls).toHaveLength(1); // one flush at a time (maxInflightFlushes 1)
    calls[0]!.succeed();
    await first;
    await sent(calls, 2);
    expect(users(calls[1])).toEqual(['b', 'c']);
    calls[1]!.succeed();
    expect(await Promise.all(later)).toEqual([{ inserted: 1 }, { inserted: 1 }]);
  });

  it('bisects a batch the database refuses for what it holds: the others commit, only the bad request fails', async () => {
    const { writer, calls, flushes } = writerWith({}, (call) =>
      call.rows.some((r) => r.kind === 'bad') ? call.fail(pgError('23514')) : call.succeed(),
    );
    const results = await Promise.allSettled([
      writer.write([row('a')]),
      writer.write([row('b')]),
      writer.write([row('c', 'bad'), row('c2')]),
      writer.write([row('d')]),
      writer.write([row('e')]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    const refused = results[2] as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(EventsRejected);
    expect((refused.reason as Error).cause).toMatchObject({ code: '23514' });
    // 5 requests -> [a b c] [d e] -> [a b] [c] -> ...: the halves until the bad one is alone.
    expect(calls.map(users)).toEqual([
      ['a', 'b', 'c', 'c2', 'd', 'e'],
      ['a', 'b', 'c', 'c2'],
      ['a', 'b'],
      ['c', 'c2'],
      ['d', 'e'],
    ]);
    // Every stored row was stored once: a and b, then d and e.
    const committed = flushes.filter((f) => f.ok).reduce((n, f) => n + f.rows, 0);
    expect(committed).toBe(4);
    expect(writer.stats).toMatchObject({ rows: 4, failedBatches: 1 });
  });

  it('does not bisect when the database is unavailable: every request of the batch gets DatabaseUnavailable', async () => {
    const { writer, calls } = writerWith({}, (call) => call.fail(pgError('08006')));
    const results = await Promise.allSettled([writer.write([row('a')]), writer.write([row('b')])]);
    expect(calls).toHaveLength(1);
    for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DatabaseUnavailable);
  });

  it('runs a statement that lost a deadlock again, up to three times', async () => {
    const { writer, calls } = writerWith({}, (call) => (calls.length < 3 ? call.fail(pgError('40P01')) : call.succeed()));
    expect(await writer.write([row('a')])).toEqual({ inserted: 1 });
    expect(calls).toHaveLength(3);

    const always = writerWith({}, (call) => call.fail(pgError('40P01')));
    await expect(always.writer.write([row('b')])).rejects.toBeInstanceOf(DatabaseUnavailable);
    expect(always.calls).toHaveLength(3);
  });

  it('cancels a statement past its deadline and answers DatabaseUnavailable', async () => {
    const { writer, calls } = writerWith({ deadlineMs: 10 });
    await expect(writer.write([row('a')])).rejects.toBeInstanceOf(DatabaseUnavailable);
    expect(calls[0]?.cancelled).toBe(true);
  });

  it('answers each request how many of its rows were new when events carry ids', async () => {
    const time = new Date(Date.UTC(2026, 0, 1));
    const { writer } = writerWith({}, (call) => call.succeed([{ site: 'default', id: 'x', time }]));
    const results = await Promise.all([writer.write([row('a', 'collect', 'x')]), writer.write([row('a', 'collect', 'x')])]);
    // The same event twice in one batch: stored once, told to the first request.
    expect(results).toEqual([{ inserted: 1 }, { inserted: 0 }]);
  });

  it('refuses a request beyond the queue bounds with QueueFull while others wait, and takes it again once they went', async () => {
    const { writer, calls } = writerWith({ maxQueueRows: 3 });
    const inFlight = writer.write([row('a'), row('b'), row('c')]);
    await sent(calls, 1); // taken off the queue: the queue is empty again
    const waiting = writer.write([row('d'), row('e')]);
    await expect(writer.write([row('f'), row('g')])).rejects.toBeInstanceOf(QueueFull);
    expect(writer.stats).toMatchObject({ rejectedFull: 1, queuedRows: 2 });
    await expect(writer.write([row('1'), row('2'), row('3'), row('4')])).rejects.toBeInstanceOf(TooManyEvents);

    calls[0]!.succeed();
    await inFlight;
    await sent(calls, 2);
    expect(writer.stats.queuedRows).toBe(0);
    const again = writer.write([row('f'), row('g')]);
    calls[1]!.succeed();
    await waiting;
    await sent(calls, 3);
    calls[2]!.succeed();
    expect(await again).toEqual({ inserted: 2 });
  });

  it('bounds the queue by bytes too', async () => {
    const { writer, calls } = writerWith({ maxQueueBytes: 4096 });
    void writer.write([row('a')]);
    await sent(calls, 1);
    await expect(writer.write([row('x'.repeat(4096))])).rejects.toBeInstanceOf(QueueFull);
    calls[0]!.succeed();
    await writer.close();
  });

  it('on close() flushes everything queued and in flight before it resolves, and refuses new writes', async () => {
    const { writer, calls } = writerWith({ maxBatchRows: 1 });
    const writes = [writer.write([row('a')]), writer.write([row('b')]), writer.write([row('c')])];
    await sent(calls, 1);
    let closed = false;
    const closing = writer.close().then(() => (closed = true));
    await expect(writer.write([row('late')])).rejects.toBeInstanceOf(ShuttingDown);
    for (let i = 0; i < 3; i++) {
      await sent(calls, i + 1);
      expect(closed).toBe(false);
      calls[i]!.succeed();
    }
    await closing;
    expect(await Promise.all(writes)).toEqual([{ inserted: 1 }, { inserted: 1 }, { inserted: 1 }]);
    expect(calls.map(users)).toEqual([['a'], ['b'], ['c']]);
    await writer.close(); // again: resolves at once
  });
  describe('with flush groups (citus mode: the worker holding a request\'s site)', () => {
    const onSite = (userId: string, site: string): EventRow => ({ ...row(userId), site });
    // Sites a and b on worker 1, c on worker 2; x is not known yet.
    const groupOf: FlushGroupOf = (rows) => {
      const sites = new Set(rows.map((r) => r.site));
      if (sites.size !== 1) return undefined;
      return { a: '1', b: '1', c: '2' }[[...sites][0]!];
    };

    it('flushes the requests of one group together, in order, and mixes no other group in', async () => {
      const { writer, calls } = writerWith({}, (call) => call.succeed(), groupOf);
      await Promise.all([
        writer.write([onSite('1', 'a')]),
        writer.write([onSite('2', 'c')]),
        writer.write([onSite('3', 'b')]),
        writer.write([onSite('4', 'x')]),
        writer.write([onSite('5', 'a'), onSite('6', 'c')]),
        writer.write([onSite('7', 'c')]),
      ]);
      expect(calls.map(users)).toEqual([['1', '3'], ['2', '7'], ['4', '5', '6']]);
    });

    it('fails only the requests of the group whose flush failed', async () => {
      const { writer, calls } = writerWith(
        { maxInflightFlushes: 2, parallelFlushMinRows: 1000 },
        (call) => (call.rows[0]!.site === 'c' ? call.fail(pgError('08006')) : call.succeed()),
        groupOf,
      );
      const results = await Promise.allSettled([
        writer.write([onSite('1', 'a')]),
        writer.write([onSite('2', 'c')]),
        writer.write([onSite('3', 'b')]),
      ]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toBeInstanceOf(DatabaseUnavailable);
      expect(calls.map(users)).toEqual([['1', '3'], ['2']]);
    });

    it('starts a flush for a group no flush is writing while another group\'s hangs, below parallelFlushMinRows', async () => {
      const { writer, calls } = writerWith({ maxInflightFlushes: 2, parallelFlushMinRows: 1000 }, undefined, groupOf);
      const first = writer.write([onSite('1', 'c')]);
      await sent(calls, 1);
      const sameGroup = writer.write([onSite('2', 'c')]);
      const other = writer.write([onSite('3', 'a')]);
      await sent(calls, 2);
      expect(calls.map(users)).toEqual([['1'], ['3']]);
      calls[1]!.succeed();
      expect(await other).toEqual({ inserted: 1 });
      // The second request of c waits for c's flush, not beside it.
      expect(calls).toHaveLength(2);
      calls[0]!.succeed();
      await sent(calls, 3);
      expect(users(calls[2])).toEqual(['2']);
      calls[2]!.succeed();
      expect(await Promise.all([first, sameGroup])).toEqual([{ inserted: 1 }, { inserted: 1 }]);
    });
  });
});
