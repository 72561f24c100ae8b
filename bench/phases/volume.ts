/**
 * Volume: BENCH_VOLUME_DAYS days of BENCH_VOLUME_EVENTS_PER_DAY events with every
 * dimension, generated in PostgreSQL day by day in one session while a second session
 * holding the roller's lock drains the queue as the service's roller would (its cost
 * measured), then the aggregates refreshed, and the declared rollups the dimension phases
 * read (bench/phases/dimensions.ts).
 *
 * Seeding and rolling overlap, as ingest and the roller do in service, so that the two
 * sessions share the machine's cores: one after the other they took 72 minutes for 31
 * days of 1,000,000 events (2,176 s seeding, then 2,080 s draining), and the 60 days
 * of issue 19's targets would take over two hours before the first read. Each session's
 * CPU is its own backend's (/proc); the whole cluster's (background writers, autovacuum
 * included) is reported over both.
 */
import type { Sql } from '../../src/db/client.js';
import { createSql } from '../../src/db/client.js';
import { DAY_MS } from '../../src/time.js';
import { fmt, type LatencyRow } from '../report.js';
import { refreshAll, seedDay, SITES } from '../seed.js';
import { backendPid, CLOCK_TICKS, cpuSnapshot, cpuSpent, processTicks } from '../system.js';
import type { BenchContext } from './context.js';
import { queryLatencies } from './read-path.js';

/** headcount_roll_up's advisory lock (sql/common/headcount_roll_up.sql): held, the service's roller moves nothing. */
const ROLLER_LOCK = 1751937123;

/** The combination and the property the bench declares for site "default" (headcount_rollups). */
export const DECLARED = ['country,device', 'props.article'];

export interface Volume {
  /** Events loaded by this phase, per site. */
  events: number;
  perSite: Record<string, number>;
  days: number;
  /** Wall time of the seeding, the roller draining the queue meanwhile. */
  seedS: number;
  /** The seeding session's CPU per seeded event (its backend: the insert, aggregates, queue and visits): µs. */
  seedBackendUsPerEvent: number;
  /** The whole cluster's CPU (postmaster and every process under it) per event, over the seeding and the drain: µs. */
  storeUsPerEvent: number;
  /** Wall time from the first seeded day to the queue drained. */
  seedAndRollS: number;
  /** The queue (headcount_pending) when the seeding ended, before the roller had caught up: bytes. */
  queueBytes: number;
  roll: RollCost;
  refreshS: number;
}

/** Draining the queue with headcount_roll_up(batch), while the seeding runs and until the queue is empty. */
export interface RollCost {
  moved: number;
  batches: number;
  batchRows: number;
  /** Wall time of the roller's session, from the seeding's start to the queue drained. */
  wallS: number;
  /** µs of CPU of the roller's backend (/proc) per event moved. */
  backendUsPerEvent: number;
  /** µs of wall time per event moved. */
  wallUsPerEvent: number;
  /**
   * What it moved once the seeding had ended (the last day, about), alone on the machine:
   * events, and µs of CPU per event of its backend and of the whole cluster. Beside the
   * seeding, two busy backends on two cores each cost more per unit of work.
   */
  alone: { moved: number; backendUsPerEvent: number; storeUsPerEvent: number };
}

/**
 * Moves queued events with `sql` (one session holding ROLLER_LOCK) until `seeding` has
 * settled and the queue is empty, measuring its backend's CPU.
 */
async function drainQueue(ctx: BenchContext, sql: Sql, batchRows: number, seeding: Promise<unknown>): Promise<RollCost> {
  const pid = await backendPid(sql);
  let seeded = false;
  let moved = 0;
  let batches = 0;
  let atSeeded = { moved: 0, ticks: 0, cpu: cpuSnapshot({}) };
  const onSeeded = () => {
    seeded = true;
    atSeeded = { moved, ticks: processTicks(pid), cpu: cpuSnapshot({ store: ctx.pgPid }) };
  };
  const done = seeding.then(onSeeded, onSeeded);
  const ticks0 = processTicks(pid);
  const t0 = performance.now();
  for (;;) {
    const [row] = await sql<[{ moved: number }]>`select headcount_roll_up(${batchRows}) as moved`;
    if (row.moved === 0) {
      if (!seeded) {
        // Ahead of the seeding: wait for its next day (or for it to end).
        await Promise.race([done, new Promise((r) => setTimeout(r, 1000))]);
        continue;
      }
      // 0 also means another session is rolling up: done only once the queue is empty.
      const [q] = await sql<[{ queued: boolean }]>`select exists (select from headcount_pending) as queued`;
      if (!q.queued) break;
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    moved += row.moved;
    batches++;
    if (batches % 100 === 0) ctx.progress.note(`${fmt(moved)} moved, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const wallS = (performance.now() - t0) / 1000;
  const ticks = processTicks(pid);
  const us = (t: number) => (t / CLOCK_TICKS) * 1e6;
  const aloneMoved = moved - atSeeded.moved;
  const aloneStore = cpuSpent(atSeeded.cpu, cpuSnapshot({ store: ctx.pgPid })).parts.store ?? NaN;
  return {
    moved,
    batches,
    batchRows,
    wallS,
    backendUsPerEvent: us(ticks - ticks0) / moved,
    wallUsPerEvent: (wallS * 1e6) / moved,
    alone: {
      moved: aloneMoved,
      backendUsPerEvent: us(ticks - atSeeded.ticks) / aloneMoved,
      storeUsPerEvent: us(aloneStore) / aloneMoved,
    },
  };
}

/** `skipDays` keep what earlier phases seeded on them (their known users): no volume is loaded on them. */
export async function seedVolume(ctx: BenchContext, today: number, skipDays: number[]): Promise<Volume | undefined> {
  const { settings, sql } = ctx;
  const { step, note } = ctx.progress;
  if (settings.volumeDays <= 0) return undefined;
  const first = today - settings.volumeDays * DAY_MS;
  // Declared before the data, so that every seeded day counts in them (a declaration
  // counts from the first UTC day starting an hour after `since`).
  for (const dims of DECLARED) {
    await sql`
      insert into headcount_rollups (site, dims, since) values ('default', ${dims}, ${new Date(first - DAY_MS)})
      on conflict (site, dims) do update set since = excluded.since
    `;
  }
  // The roller's session holds its lock throughout: the service's roller moves nothing,
  // so the drain measures this roller alone (the lock is re-entrant for it). Both sessions
  // keep their backends (keepSessions): a connection the pool reopened after its lifetime
  // (30-60 minutes) dropped the lock, and its CPU was lost to /proc.
  const roller = createSql(ctx.dbUrl, { max: 1, applicationName: 'headcount-bench-roller', keepSessions: true });
  const seeder = createSql(ctx.dbUrl, { max: 1, applicationName: 'headcount-bench-seed', keepSessions: true });
  await roller`select pg_advisory_lock(${ROLLER_LOCK})`;
  step(
    `volume: ${settings.volumeDays} days x ${fmt(settings.volumeEventsPerDay)} events/day with every dimension, 3 sites, generated in PostgreSQL, the queue rolled up meanwhile (headcount_roll_up in a loop, one session, as the service's roller does)`,
  );
  const perSite: Record<string, number> = {};
  let events = 0;
  let days = 0;
  const t1 = performance.now();
  const cpu0 = cpuSnapshot({ store: ctx.pgPid });
  const seedPid = await backendPid(seeder);
  let seedTicks = processTicks(seedPid);
  let queueBytes = 0;
  const seeding = (async () => {
    for (let d = 1; d <= settings.volumeDays; d++) {
      const day = today - d * DAY_MS;
      if (skipDays.includes(day) || day < Date.now() - 60 * DAY_MS) continue;
      await seedDay(seeder, day, settings.volumeEventsPerDay);
      events += settings.volumeEventsPerDay;
      days++;
      if (d % 10 === 0) note(`${d} days seeded, ${((performance.now() - t1) / 1000).toFixed(0)} s`);
    }
    seedTicks = processTicks(seedPid) - seedTicks;
    const [q] = await seeder<[{ bytes: string }]>`select pg_total_relation_size('headcount_pending') as bytes`;
    queueBytes = Number(q.bytes);
    return (performance.now() - t1) / 1000;
  })();
  let roll: RollCost;
  let seedS: number;
  try {
    [roll, seedS] = await Promise.all([drainQueue(ctx, roller, settings.rollBatchRows, seeding), seeding]);
  } catch (err) {
    await seeder.end({ timeout: 0 });
    throw err;
  } finally {
    await roller`select pg_advisory_unlock(${ROLLER_LOCK})`.catch(() => {});
    await roller.end();
  }
  const seedBackendUsPerEvent = ((seedTicks / CLOCK_TICKS) * 1e6) / events;
  await seeder.end();
  const seedAndRollS = (performance.now() - t1) / 1000;
  const storeUsPerEvent = (((cpuSpent(cpu0, cpuSnapshot({ store: ctx.pgPid })).parts.store ?? NaN) / CLOCK_TICKS) * 1e6) / events;
  for (const r of await sql<{ site: string; n: string }[]>`
    select site, count(*) as n from events where time >= ${new Date(first)} and time < ${new Date(today)} group by site
  `)
    if (SITES.some((s) => s.site === r.site)) perSite[r.site] = Number(r.n);
  note(
    `${fmt(events)} events seeded in ${seedS.toFixed(0)} s (its backend ${fmt(seedBackendUsPerEvent, 1)} µs CPU/event); per site ${JSON.stringify(perSite)}; queue left then ${fmt(queueBytes / 2 ** 20)} MiB`,
  );
  if (roll.moved < events)
    note(`WARNING: the drain moved ${fmt(roll.moved)} of ${fmt(events)} events: the service's roller moved the rest`);
  note(
    `rolled up ${fmt(roll.moved)} events in ${roll.batches} batches of ${fmt(roll.batchRows)}, drained ${seedAndRollS.toFixed(0)} s after the seeding started: its backend ${fmt(roll.backendUsPerEvent, 2)} µs CPU/event; the whole cluster ${fmt(storeUsPerEvent, 2)} µs/event over both; after the seeding, alone: ${fmt(roll.alone.moved)} events, its backend ${fmt(roll.alone.backendUsPerEvent, 2)} µs/event, the whole cluster ${fmt(roll.alone.storeUsPerEvent, 2)}`,
  );
  const t2 = performance.now();
  await refreshAll(ctx.dbUrl);
  const refreshS = (performance.now() - t2) / 1000;
  note(`refresh ${refreshS.toFixed(0)} s`);
  return { events, perSite, days, seedS, seedBackendUsPerEvent, storeUsPerEvent, seedAndRollS, queueBytes, roll, refreshS };
}

/** The read path's query latencies again, over the volume (none without one). */
export async function measureVolume(ctx: BenchContext, today: number, volume: Volume | undefined): Promise<LatencyRow[]> {
  if (!volume) return [];
  return queryLatencies(ctx, today, `(${ctx.settings.volumeDays}-day volume)`);
}
