/**
 * Read after a back-dated write: GET /collect of a day 2-35 days ago, then at once GET
 * /daily_uniques of that day, one pair after another for BENCH_READ_AFTER_WRITE_S.
 */
import { DAY_MS } from '../../src/time.js';
import type { LatencyRow } from '../report.js';
import { type BenchContext, isoDay, randomId } from './context.js';

export interface ReadAfterWrite {
  pairs: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Reads that did not count the write just before them. */
  missed: number;
  /** Pairs with an answer other than 200. */
  failures: number;
  /** Where TimescaleDB's aggregates were materialized through when the phase began. */
  watermark: string;
}

/** `accuracyDays` are left out: their counts are too large to show one more user exactly. */
export async function measureReadAfterWrite(
  ctx: BenchContext,
  today: number,
  accuracyDays: number[],
): Promise<{ result: ReadAfterWrite; row: LatencyRow }> {
  const { settings, sql } = ctx;
  const baseUrl = ctx.service.url;
  // After the refresh of the accuracy phase, every back-dated day lies below the
  // aggregates' watermark: the write must mark its hour stale, and the very next read must count it.
  const rawDays = Array.from({ length: 34 }, (_, i) => today - (2 + i) * DAY_MS).filter((d) => !accuracyDays.includes(d));
  let watermark = 'n/a (postgres mode: tables kept in the writing transaction)';
  if (ctx.storageMode === 'timescaledb') {
    const [w]: [{ through: Date }?] = await sql`select through from headcount_refresh_state`;
    watermark = w?.through.toISOString() ?? '?';
  }
  ctx.progress.step(
    `read after a back-dated write: GET /collect?d=<a day 2-35 days ago> then at once GET /daily_uniques of that day, 1 client, ${settings.readAfterWriteS} s (watermark ${watermark})`,
  );
  const expected = new Map<number, number>();
  for (const d of rawDays) expected.set(d, Number(await (await fetch(`${baseUrl}/daily_uniques?d=${isoDay(d)}`)).text()));
  const samples: number[] = [];
  let missed = 0;
  let failures = 0;
  const until = performance.now() + settings.readAfterWriteS * 1000;
  for (let i = 0; performance.now() < until; i++) {
    const day = rawDays[i % rawDays.length]!;
    const t = performance.now();
    const w = await fetch(
      `${baseUrl}/collect?cid=raw-${i}-${randomId()}&d=${Math.floor(day / 1000) + Math.floor(Math.random() * 86_400)}`,
    );
    await w.arrayBuffer();
    const r = await fetch(`${baseUrl}/daily_uniques?d=${isoDay(day)}`);
    const n = Number(await r.text());
    samples.push(performance.now() - t);
    if (w.status !== 200 || r.status !== 200) failures++;
    // Small days are exact (hll explicit/sparse): a new user must show at once.
    if (n < expected.get(day)! + 1) missed++;
    expected.set(day, Math.max(n, expected.get(day)! + 1));
  }
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  const result = {
    pairs: samples.length,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: samples.at(-1) ?? NaN,
    missed,
    failures,
    watermark,
  };
  ctx.progress.note(
    `${result.pairs} pairs, p50 ${result.p50Ms.toFixed(2)} ms, p99 ${result.p99Ms.toFixed(2)} ms; reads that missed their write: ${result.missed}`,
  );
  const row: LatencyRow = {
    scenario: 'back-dated GET /collect, then GET /daily_uniques of that day (pair)',
    requests: result.pairs,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    maxMs: result.maxMs,
    failures: result.failures + result.missed,
  };
  return { result, row };
}
