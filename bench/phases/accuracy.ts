/**
 * Accuracy: days of known distinct users (each seen twice), one day per size, and what
 * GET /daily_uniques estimates for each after a refresh.
 */
import { DAY_MS } from '../../src/time.js';
import { fmt } from '../report.js';
import { refreshAll, seedDistinctUsers } from '../seed.js';
import { type BenchContext, isoDay } from './context.js';

export interface AccuracyRow {
  users: number;
  estimate: number;
  errorPct: number;
}

export interface Accuracy {
  rows: AccuracyRow[];
  /** The days seeded, 40 days ago and before: the later phases leave them alone. */
  days: number[];
}

export async function measureAccuracy(ctx: BenchContext, today: number): Promise<Accuracy> {
  const { settings, sql } = ctx;
  const { step, note } = ctx.progress;
  const rows: AccuracyRow[] = [];
  const days = settings.accuracyUsers.map((_, i) => today - (40 + i) * DAY_MS);
  for (const [i, users] of settings.accuracyUsers.entries()) {
    step(`accuracy: ${fmt(users)} distinct users (each seen twice) on ${isoDay(days[i]!)}`);
    await seedDistinctUsers(sql, days[i]!, users, `acc${users}-`);
  }
  await refreshAll(ctx.dbUrl);
  for (const [i, users] of settings.accuracyUsers.entries()) {
    const estimate = Number(await (await fetch(`${ctx.service.url}/daily_uniques?d=${isoDay(days[i]!)}`)).text());
    rows.push({ users, estimate, errorPct: ((estimate - users) / users) * 100 });
    note(`${fmt(users)} users: /daily_uniques says ${fmt(estimate)} (${(((estimate - users) / users) * 100).toFixed(2)} %)`);
  }
  return { rows, days };
}
