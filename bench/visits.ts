/**
 * npm run bench:visits — what keeping the visits costs an insert: 1,000-event batches
 * (page views of 20,000 visitors over the last 24 hours, in no order: most events extend
 * or merge a stored visit) inserted with headcount_track_visits doing its work and nothing,
 * alternately, into a database of its own (STORAGE_MODE picks the mode). Reports the
 * median wall time per event of the insert statement (all its triggers) for both, and the
 * difference: the visits' cost per event.
 *
 * BENCH_VISITS_SHAPE=collect: instead, what the seed APIs' GET /collect sends: batches of
 * BENCH_VISITS_BATCH (default 25) events of the current minute, each of a visitor never
 * seen (a random cid per request): every event starts a visit.
 *
 * BENCH_VISITS_SITES=<n>: each batch's events spread over n sites (default 1).
 *
 * Besides the wall time, the CPU of the server process (/proc: the cluster runs here).
 * BENCH_VISITS_BASELINE=<file>: a definition of headcount_track_visits to compare with
 * (`git show <commit>:sql/common/headcount_track_visits.sql > /tmp/base.sql`), applied in
 * turn with the current one: without visits, baseline, current, and again.
 */
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSql } from '../src/db/client.js';
import type { StorageMode } from '../src/db/storage.js';
import { freePort } from '../src/db/local-cluster.js';
import { type EventRow, insertEvents } from '../src/ingest/writer.js';
import { createLogger } from '../src/log.js';
import { benchDatabase } from './database.js';
import { readFile } from 'node:fs/promises';
import { SQL_DIR } from '../src/db/sql-objects.js';
import { median } from './load.js';
import { withoutPart } from './sql-parts.js';
import { backendPid, CLOCK_TICKS, processTicks } from './system.js';

const env = process.env;
const rounds = Number(env.BENCH_VISITS_ROUNDS ?? 10);
const batchesPerRound = Number(env.BENCH_VISITS_BATCHES ?? 20);
const collectShape = env.BENCH_VISITS_SHAPE === 'collect';
const BATCH = Number(env.BENCH_VISITS_BATCH ?? (collectShape ? 25 : 1000));
const VISITORS = 20_000;
/** BENCH_VISITS_SITES=<n>: the events of a batch spread over n sites (the writer's batches mix the sites of concurrent requests). */
const SITES = Number(env.BENCH_VISITS_SITES ?? 1);
const siteOf = (n: number): string => (SITES > 1 ? `site-${n % SITES}` : 'default');
const DAY_MS = 86_400_000;

/** Batch `b`: spread over visitors and the last day by multiplicative hashing (the same every run). */
function batch(b: number, now: number): EventRow[] {
  return Array.from({ length: BATCH }, (_, i) => {
    const n = b * BATCH + i;
    if (collectShape)
      return { site: siteOf(n), timeMs: Date.now(), kind: 'collect', userId: `cid-${now}-${n}`, page: '', weight: 1 };
    return {
      site: siteOf(n),
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
  const db = await benchDatabase('headcount_bench_visits', log, {
    dataDir: path.resolve('.data/bench-visits'),
    port: await freePort(),
  });
  const sql = createSql(db.url, { max: 1 });
  const [{ mode }] = (await sql`select storage_mode as mode from headcount_settings`) as unknown as [{ mode: StorageMode }];
  const now = Date.now();
  const current = await readFile(path.join(SQL_DIR, 'common', 'headcount_track_visits.sql'), 'utf8');
  const baseline = env.BENCH_VISITS_BASELINE ? await readFile(env.BENCH_VISITS_BASELINE, 'utf8') : undefined;
  const variants: [string, string | undefined][] = [
    ['without visits', undefined],
    ...(baseline ? ([['baseline', baseline]] as [string, string][]) : []),
    ['with visits', current],
  ];
  const wall = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  const cpu = new Map<string, number[]>(variants.map(([name]) => [name, []]));
  try {
    const pid = await backendPid(sql);
    // What the service's roller does for a new table (headcount_analyze_new): statistics
    // once it holds rows (2,000 visits: past the 1,000 at which small batches get one plan,
    // headcount_track_visits), so the visits statement is planned as on a running service.
    let b = 0;
    await sql.unsafe(current);
    while (b * BATCH < 2_000) await insertEvents(sql, batch(b++, now));
    await sql`analyze headcount_visits`;
    for (let round = 0; round < rounds; round++) {
      for (const [name, definition] of variants) {
        if (definition) await sql.unsafe(definition);
        else await withoutPart(sql, mode, 'headcount_track_visits');
        const ticks = processTicks(pid);
        for (let i = 0; i < batchesPerRound; i++) {
          const rows = batch(b++, now);
          const start = performance.now();
          await insertEvents(sql, rows);
          wall.get(name)!.push(((performance.now() - start) * 1000) / BATCH);
        }
        cpu.get(name)!.push(((processTicks(pid) - ticks) * 1e6) / CLOCK_TICKS / (batchesPerRound * BATCH));
      }
    }
    const [stored]: [{ visits: number; events: number }?] = await sql`
      select (select count(*) from headcount_visits)::int as visits, (select count(*) from events)::int as events
    `;
    const without = { wall: median(wall.get('without visits')!), cpu: median(cpu.get('without visits')!) };
    console.log(
      `mode ${env.STORAGE_MODE ?? 'auto'}, shape ${collectShape ? 'collect' : 'visits'}, ${SITES} site(s) per batch: ${rounds} rounds × ${batchesPerRound} batches of ${BATCH} per variant`,
    );
    for (const [name] of variants) {
      const w = median(wall.get(name)!);
      const c = median(cpu.get(name)!);
      const added =
        name === 'without visits' ? '' : `  visits: +${(w - without.wall).toFixed(1)} wall, +${(c - without.cpu).toFixed(1)} CPU`;
      console.log(
        `  ${name.padEnd(15)} ${w.toFixed(1)} µs/event wall (median of batches), ${c.toFixed(1)} µs/event PostgreSQL CPU (median of rounds)${added}`,
      );
    }
    if (baseline) {
      const ratio = (median(cpu.get('with visits')!) - without.cpu) / (median(cpu.get('baseline')!) - without.cpu);
      console.log(`  the visits' CPU, current / baseline: ${ratio.toFixed(3)}`);
    }
    console.log(`  stored: ${stored?.events} events, ${stored?.visits} visits`);
  } finally {
    await sql.end();
    await db.close();
  }
}

await main();
