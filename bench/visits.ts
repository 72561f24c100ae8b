/**
 * npm run bench:visits — what keeping the visits costs an insert: 1,000-event batches
 * (page views of 20,000 visitors over the last 24 hours, in no order: most events extend
 * or merge a stored visit) inserted with the trigger events_visits enabled and disabled,
 * alternately, into a database of its own (STORAGE_MODE picks the mode). Reports the
 * median wall time per event of the insert statement (all its triggers) for both, and the
 * difference: the visits' cost per event.
 *
 * BENCH_VISITS_SHAPE=collect: instead, what the seed APIs' GET /collect sends: batches of
 * BENCH_VISITS_BATCH (default 25) events of the current minute, each of a visitor never
 * seen (a random cid per request): every event starts a visit.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSql } from '../src/db/client.js';
import { freePort } from '../src/db/local-cluster.js';
import { type EventRow, insertEvents } from '../src/ingest/writer.js';
import { createLogger } from '../src/log.js';
import { benchDatabase } from './database.js';
import { median } from './load.js';

const env = process.env;
const rounds = Number(env.BENCH_VISITS_ROUNDS ?? 10);
const batchesPerRound = Number(env.BENCH_VISITS_BATCHES ?? 20);
const collectShape = env.BENCH_VISITS_SHAPE === 'collect';
const BATCH = Number(env.BENCH_VISITS_BATCH ?? (collectShape ? 25 : 1000));
const VISITORS = 20_000;
const DAY_MS = 86_400_000;

/** Batch `b`: spread over visitors and the last day by multiplicative hashing (the same every run). */
function batch(b: number, now: number): EventRow[] {
  return Array.from({ length: BATCH }, (_, i) => {
    const n = b * BATCH + i;
    if (collectShape) return { site: 'default', timeMs: Date.now(), kind: 'collect', userId: `cid-${now}-${n}`, page: '', weight: 1 };
    return {
      site: 'default',
      timeMs: now - ((n * 2_654_435_761) % DAY_MS),
      kind: 'pageview',
      userId: `visitor-${(n * 40_503) % VISITORS}`,
      page: `/page-${n % 300}`,
      weight: 1,
    };
  });
}

async function main(): Promise<void> {
  const log = createLogger('warn');
  const db = await benchDatabase('headcount_bench_visits', log, { dataDir: path.resolve('.data/bench-visits'), port: await freePort() });
  const sql = createSql(db.url, { max: 1 });
  const now = Date.now();
  const perEvent: Record<'with visits' | 'without visits', number[]> = { 'with visits': [], 'without visits': [] };
  try {
    let b = 0;
    for (let round = 0; round < rounds; round++) {
      for (const variant of ['without visits', 'with visits'] as const) {
        await sql.unsafe(`alter table events ${variant === 'with visits' ? 'enable' : 'disable'} trigger events_visits`);
        for (let i = 0; i < batchesPerRound; i++) {
          const rows = batch(b++, now);
          const start = performance.now();
          await insertEvents(sql, rows);
          perEvent[variant].push(((performance.now() - start) * 1000) / BATCH);
        }
      }
    }
    const [stored]: [{ visits: number; events: number }?] = await sql`
      select (select count(*) from headcount_visits)::int as visits, (select count(*) from events)::int as events
    `;
    const without = median(perEvent['without visits']);
    const withVisits = median(perEvent['with visits']);
    console.log(`mode ${env.STORAGE_MODE ?? 'auto'}, shape ${collectShape ? 'collect' : 'visits'}: ${rounds} rounds × ${batchesPerRound} batches of ${BATCH} per variant`);
    console.log(`  without visits  ${without.toFixed(1)} µs/event (median of batches)`);
    console.log(`  with visits     ${withVisits.toFixed(1)} µs/event`);
    console.log(`  visits cost     ${(withVisits - without).toFixed(1)} µs/event`);
    console.log(`  stored: ${stored?.events} events, ${stored?.visits} visits`);
  } finally {
    await sql.end();
    await db.close();
  }
}

await main();
