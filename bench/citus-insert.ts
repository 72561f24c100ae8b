/**
 * npm run bench:citus-insert — the writer's statement, 1,000-event batches, on one
 * PostgreSQL in postgres mode (the trigger keeps the aggregates) against a local Citus
 * cluster of a coordinator and two workers in citus mode (the statement calls
 * headcount_events_inserted itself): a batch of one site (one shard) and one spread over
 * 50 sites (every shard, two-phase commit). One writer, batches one after the other; both
 * clusters on this machine, made for the run in a temporary folder and removed after.
 * BENCH_CITUS_BATCHES (default 40) batches per case and round, 3 rounds.
 */
import { createSql, type Sql } from '../src/db/client.js';
import { type EventRow, insertEvents } from '../src/ingest/writer.js';
import { createLogger } from '../src/log.js';
import { startBenchClusters } from './clusters.js';
import { median } from './load.js';
import { table } from './report.js';

const BATCH = 1000;

function batchOf(n: number, sites: number): EventRow[] {
  const now = Date.now();
  return Array.from({ length: BATCH }, (_, j) => {
    const i = n * BATCH + j;
    return {
      site: `site-${i % sites}`,
      timeMs: now - 60_000 - (i % 3_600_000),
      kind: 'click',
      userId: `u${i % 50_000}`,
      page: '',
      weight: 1,
      id: `e${i}`,
    };
  });
}

/** Events per second of `batches` batches, one after the other. */
async function rate(sql: Sql, citus: boolean, sites: number, first: number, batches: number): Promise<number> {
  const started = performance.now();
  for (let n = first; n < first + batches; n++) await insertEvents(sql, batchOf(n, sites), { callInserted: citus });
  return (batches * BATCH) / ((performance.now() - started) / 1000);
}

async function main(): Promise<void> {
  const log = createLogger('warn');
  const batches = Number(process.env.BENCH_CITUS_BATCHES ?? 40);
  const { single, citus, stop } = await startBenchClusters(log);
  try {
    const targets = [
      { name: 'postgres (1 node, trigger)', sql: createSql(single.url, { max: 1 }), citus: false },
      { name: 'citus (2 workers, 8 shards)', sql: createSql(citus.url, { max: 1 }), citus: true },
    ];
    const rows: string[][] = [];
    let next = 0;
    for (const sites of [1, 50]) {
      const results = targets.map(() => [] as number[]);
      // A warm-up batch each, then rounds alternating the order.
      for (const t of targets) await rate(t.sql, t.citus, sites, next++, 1);
      for (let round = 0; round < 3; round++) {
        const order = round % 2 === 0 ? [0, 1] : [1, 0];
        for (const i of order) {
          results[i]!.push(await rate(targets[i]!.sql, targets[i]!.citus, sites, next, batches));
          next += batches;
        }
      }
      for (const [i, t] of targets.entries()) {
        const eps = median(results[i]!);
        rows.push([
          t.name,
          String(sites),
          Math.round(eps).toLocaleString('en-US'),
          ((BATCH / eps) * 1000).toFixed(1),
          results[i]!.map((r) => Math.round(r)).join(', '),
        ]);
      }
    }
    for (const t of targets) await t.sql.end();
    console.log(`\n${BATCH}-event batches with ids, ${batches} per round, 3 rounds (median):\n`);
    console.log(table(['database', 'sites per batch', 'events/s', 'ms per batch', 'rounds (events/s)'], rows));
  } finally {
    await stop();
  }
}

await main();
