/**
 * npm run bench:fold-reads — what the parts inserts append cost the current hour's read
 * while events arrive, at two fold intervals. On a database of its own (STORAGE_MODE picks
 * the mode), BENCH_FOLD_EVENTS (1,000,000) events are seeded into the current hour and
 * folded; then each round, for BENCH_FOLD_ROUND_S (12) seconds, one session inserts
 * 32-event batches back to back (as the writer does at 64 connections), another folds
 * every BENCH_FOLD_MS_A (1,000) or BENCH_FOLD_MS_B (250) milliseconds as the roller does
 * (FOLD_INTERVAL_MS), and a third times the seed API's current-hour read (hourSummary,
 * behind GET /analytics) back to back. Rounds A B, B A, … (BENCH_FOLD_ROUNDS, 6), medians
 * of the rounds' p50 and p99, and of the events inserted a second.
 *
 * BENCH_FOLD_SQL_B="<statement>": B also runs it every BENCH_FOLD_SQL_EVERY_MS (2,000) from
 * the folding session (e.g. a VACUUM of the parts tables), the fold interval then the same.
 */
import path from 'node:path';
import { hourSummary } from '../src/analytics/queries.js';
import { createSql, type Sql } from '../src/db/client.js';
import { freePort } from '../src/db/local-cluster.js';
import { foldEvents } from '../src/db/roller.js';
import { type EventRow, insertEvents } from '../src/ingest/writer.js';
import { createLogger } from '../src/log.js';
import { floorHour } from '../src/time.js';
import { benchDatabase } from './database.js';
import { callLatency, median } from './load.js';
import { table } from './report.js';
import { refreshAll, seedAnalytics } from './seed.js';

const env = process.env;
const rounds = Number(env.BENCH_FOLD_ROUNDS ?? 6);
const roundS = Number(env.BENCH_FOLD_ROUND_S ?? 12);
const seeded = Number(env.BENCH_FOLD_EVENTS ?? 1_000_000);
const foldMs = { A: Number(env.BENCH_FOLD_MS_A ?? 1000), B: Number(env.BENCH_FOLD_MS_B ?? 250) };
const extraSqlB = env.BENCH_FOLD_SQL_B;
const extraEveryMs = Number(env.BENCH_FOLD_SQL_EVERY_MS ?? 2000);

const batch = (): EventRow[] => {
  const now = Date.now();
  return Array.from({ length: 32 }, () => ({
    site: 'default',
    timeMs: now,
    kind: Math.random() < 0.25 ? 'click' : 'impression',
    userId: crypto.randomUUID(),
    page: '',
    weight: 1,
  }));
};

interface Round {
  p50: number;
  p99: number;
  eventsPerSec: number;
}

async function round(
  sessions: { writer: Sql; folder: Sql; reader: Sql },
  everyMs: number,
  hour: number,
  extraSql: string | undefined,
): Promise<Round> {
  const end = Date.now() + roundS * 1000;
  let inserted = 0;
  const ingest = (async () => {
    while (Date.now() < end) {
      await insertEvents(sessions.writer, batch());
      inserted += 32;
    }
  })();
  const fold = (async () => {
    let extraAt = Date.now() + extraEveryMs;
    while (Date.now() < end) {
      await foldEvents(sessions.folder);
      if (extraSql && Date.now() >= extraAt) {
        await sessions.folder.unsafe(extraSql);
        extraAt = Date.now() + extraEveryMs;
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  const reads = await callLatency({
    workers: 1,
    durationS: roundS,
    call: () => hourSummary(sessions.reader, 'default', hour),
  });
  await Promise.all([ingest, fold]);
  await foldEvents(sessions.folder);
  return { p50: reads.p50Ms, p99: reads.p99Ms, eventsPerSec: inserted / roundS };
}

async function main(): Promise<void> {
  const log = createLogger('warn');
  const db = await benchDatabase('headcount_bench_fold_reads', log, {
    dataDir: path.resolve('.data/bench-fold-reads'),
    port: await freePort(),
  });
  const sessions = {
    writer: createSql(db.url, { max: 1 }),
    folder: createSql(db.url, { max: 1 }),
    reader: createSql(db.url, { max: 1 }),
  };
  try {
    const hour = floorHour(Date.now());
    await seedAnalytics(sessions.writer, hour, Math.max(hour + 1000, Date.now() - 1000), seeded, 250_000);
    await refreshAll(db.url);
    await foldEvents(sessions.folder);
    await sessions.writer`analyze`;
    const results: Record<'A' | 'B', Round[]> = { A: [], B: [] };
    for (let r = 0; r < rounds; r++) {
      for (const name of r % 2 === 0 ? (['A', 'B'] as const) : (['B', 'A'] as const)) {
        const got = await round(sessions, foldMs[name], hour, name === 'B' ? extraSqlB : undefined);
        results[name].push(got);
        console.log(
          `round ${r + 1} ${name} (fold every ${foldMs[name]} ms${name === 'B' && extraSqlB ? ', and its SQL' : ''}): ${Math.round(got.eventsPerSec)} events/s inserted, read p50 ${got.p50.toFixed(2)} ms, p99 ${got.p99.toFixed(2)} ms`,
        );
      }
    }
    const med = (name: 'A' | 'B', key: keyof Round) => median(results[name].map((x) => x[key]));
    console.log(
      `\n${env.STORAGE_MODE ?? 'auto'} mode, ${seeded.toLocaleString('en')} events seeded in the current hour, ${rounds} rounds of ${roundS} s, medians\n`,
    );
    console.log(
      table(
        ['variant', 'fold every', 'events/s inserted', 'read p50 ms', 'read p99 ms'],
        (['A', 'B'] as const).map((name) => [
          name === 'B' && extraSqlB ? `B + ${extraSqlB} every ${extraEveryMs} ms` : name,
          `${foldMs[name]} ms`,
          Math.round(med(name, 'eventsPerSec')).toLocaleString('en'),
          med(name, 'p50').toFixed(2),
          med(name, 'p99').toFixed(2),
        ]),
      ),
    );
    console.log(
      `\nB / A: read p50 ${(med('B', 'p50') / med('A', 'p50')).toFixed(2)}, p99 ${(med('B', 'p99') / med('A', 'p99')).toFixed(2)}, events/s ${(med('B', 'eventsPerSec') / med('A', 'eventsPerSec')).toFixed(2)}`,
    );
  } finally {
    await Promise.all(Object.values(sessions).map((s) => s.end()));
    await db.close();
  }
}

await main();
