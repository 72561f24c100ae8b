/**
 * Volume: BENCH_VOLUME_DAYS days of BENCH_VOLUME_EVENTS_PER_DAY events with every
 * dimension, generated in PostgreSQL with the dimension roller held off, then the queue
 * drained as the roller would (its cost measured), the aggregates refreshed, and the
 * declared rollups the dimension phases read (bench/phases/dimensions.ts).
 */
import type { Sql } from '../../src/db/client.js';
import { createSql } from '../../src/db/client.js';
import { DAY_MS } from '../../src/time.js';
import { fmt, type LatencyRow } from '../report.js';
import { refreshAll, seedDay, SITES } from '../seed.js';
import { CLOCK_TICKS, cpuSnapshot, cpuSpent } from '../system.js';
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
  seedS: number;
  /** PostgreSQL's CPU per seeded event (insert, aggregates, the queue trigger): µs. */
  seedStoreUsPerEvent: number;
  /** The queue (headcount_pending) once seeded, before the roller ran: bytes. */
  queueBytes: number;
  roll: RollCost;
  refreshS: number;
}

/** Draining the queue with headcount_roll_up(batch) until it returns 0. */
export interface RollCost {
  moved: number;
  batches: number;
  batchRows: number;
  wallS: number;
  /** µs of CPU of the whole PostgreSQL cluster (/proc, postmaster and its backends) per event moved. */
  storeUsPerEvent: number;
  /** µs of wall time per event moved (one session, the machine shared). */
  wallUsPerEvent: number;
}

/** Moves every queued event with `sql` (one session holding ROLLER_LOCK), measuring PostgreSQL's CPU. */
export async function drainQueue(ctx: BenchContext, sql: Sql, batchRows: number): Promise<RollCost> {
  const before = cpuSnapshot({ store: ctx.pgPid });
  const t0 = performance.now();
  let moved = 0;
  let batches = 0;
  for (;;) {
    const [row] = await sql<[{ moved: number }]>`select headcount_roll_up(${batchRows}) as moved`;
    if (row.moved === 0) {
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
  const spent = cpuSpent(before, cpuSnapshot({ store: ctx.pgPid }));
  const storeUs = ((spent.parts.store ?? NaN) / CLOCK_TICKS) * 1e6;
  return { moved, batches, batchRows, wallS, storeUsPerEvent: storeUs / moved, wallUsPerEvent: (wallS * 1e6) / moved };
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
  // One session holds the roller's lock while seeding: the service's roller moves
  // nothing, so the drain below measures the roller alone (the lock is re-entrant for it).
  // That session seeds too: idle, the pool would close it (idle_timeout) and drop the lock.
  const roller = createSql(ctx.dbUrl, { max: 1, applicationName: 'headcount-bench-roller' });
  await roller`select pg_advisory_lock(${ROLLER_LOCK})`;
  step(
    `volume: ${settings.volumeDays} days x ${fmt(settings.volumeEventsPerDay)} events/day with every dimension, 3 sites, generated in PostgreSQL (roller held off)`,
  );
  const perSite: Record<string, number> = {};
  let events = 0;
  let days = 0;
  const t1 = performance.now();
  const cpu0 = cpuSnapshot({ store: ctx.pgPid });
  for (let d = 1; d <= settings.volumeDays; d++) {
    const day = today - d * DAY_MS;
    if (skipDays.includes(day) || day < Date.now() - 60 * DAY_MS) continue;
    await seedDay(roller, day, settings.volumeEventsPerDay);
    events += settings.volumeEventsPerDay;
    days++;
    if (d % 10 === 0) note(`${d} days, ${((performance.now() - t1) / 1000).toFixed(0)} s`);
  }
  const seedS = (performance.now() - t1) / 1000;
  const seedStoreUsPerEvent =
    (((cpuSpent(cpu0, cpuSnapshot({ store: ctx.pgPid })).parts.store ?? NaN) / CLOCK_TICKS) * 1e6) / events;
  for (const r of await sql<{ site: string; n: string }[]>`
    select site, count(*) as n from events where time >= ${new Date(first)} and time < ${new Date(today)} group by site
  `)
    if (SITES.some((s) => s.site === r.site)) perSite[r.site] = Number(r.n);
  const [q] = await sql<[{ bytes: string }]>`select pg_total_relation_size('headcount_pending') as bytes`;
  const queueBytes = Number(q.bytes);
  note(
    `${fmt(events)} events in ${seedS.toFixed(0)} s (PostgreSQL ${fmt(seedStoreUsPerEvent, 1)} µs CPU/event); per site ${JSON.stringify(perSite)}; queue ${fmt(queueBytes / 2 ** 20)} MiB`,
  );

  step('draining the queue: headcount_roll_up in a loop, one session, as the service roller does');
  const roll = await drainQueue(ctx, roller, settings.rollBatchRows);
  await roller`select pg_advisory_unlock(${ROLLER_LOCK})`;
  await roller.end();
  if (roll.moved < events)
    note(`WARNING: the drain moved ${fmt(roll.moved)} of ${fmt(events)} events: the service's roller moved the rest`);
  note(
    `${fmt(roll.moved)} events in ${roll.batches} batches of ${fmt(roll.batchRows)}, ${roll.wallS.toFixed(0)} s: PostgreSQL CPU ${fmt(roll.storeUsPerEvent, 2)} µs/event (/proc), wall ${fmt(roll.wallUsPerEvent, 2)} µs/event`,
  );
  const t2 = performance.now();
  await refreshAll(ctx.dbUrl);
  const refreshS = (performance.now() - t2) / 1000;
  note(`refresh ${refreshS.toFixed(0)} s`);
  return { events, perSite, days, seedS, seedStoreUsPerEvent, queueBytes, roll, refreshS };
}

/** The read path's query latencies again, over the volume (none without one). */
export async function measureVolume(ctx: BenchContext, today: number, volume: Volume | undefined): Promise<LatencyRow[]> {
  if (!volume) return [];
  return queryLatencies(ctx, today, `(${ctx.settings.volumeDays}-day volume)`);
}
