/**
 * What rolling the queue up costs, apart from the write that queued it: a session that
 * drains headcount_pending at once (as the service's roller would, without waiting for
 * ROLLUP_MIN_ROWS), and the CPU of the backends that roll up (the service's roller and
 * that session, by application_name), read from /proc.
 */
import { createSql, type Sql } from '../src/db/client.js';
import { processTicks } from './system.js';

const DRAIN_APP = 'headcount-bench-drain';

/** Its own session (no idle end, no lifetime), so that its backend's CPU is the roll-up's. */
export const drainSession = (url: string): Sql => createSql(url, { max: 1, applicationName: DRAIN_APP, keepSessions: true });

/** Rolls the queue up until it is empty (one roll at a time: the roller's lock). */
export async function drained(drain: Sql): Promise<void> {
  for (;;) {
    const [row] = await drain<[{ moved: number }]>`select headcount_roll_up(20000) as moved`;
    if (row.moved > 0) continue;
    const [q] = await drain<[{ queued: boolean }]>`select exists (select from headcount_pending) as queued`;
    if (!q.queued) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** CPU ticks of each backend that rolls the queue up, by pid. */
export async function rollUpTicks(sql: Sql): Promise<Map<number, number>> {
  const rows = await sql<{ pid: number }[]>`
    select pid from pg_stat_activity
     where datname = current_database() and application_name in ('headcount-roller', ${DRAIN_APP})`;
  return new Map(rows.map((r) => [r.pid, processTicks(r.pid)]));
}

/**
 * Ticks the roll-up backends spent between two readings; NaN when one of them ended
 * meanwhile (its time is then in the postmaster's, not attributable).
 */
export function rollUpSpent(before: Map<number, number>, after: Map<number, number>): number {
  if ([...before.keys()].some((pid) => !after.has(pid))) return NaN;
  let ticks = 0;
  for (const [pid, t] of after) ticks += t - (before.get(pid) ?? 0);
  return ticks;
}
