/**
 * npm run bench:citus-insert — the writer's statement, 1,000-event batches, on one
 * PostgreSQL in postgres mode (the trigger keeps the aggregates) against a local Citus
 * cluster of a coordinator and two workers in citus mode (the statement calls
 * headcount_events_inserted itself): a batch of one site (one shard) and one spread over
 * 50 sites (every shard, two-phase commit). One writer, batches one after the other; both
 * clusters on this machine, made for the run in a temporary folder and removed after.
 * BENCH_CITUS_BATCHES (default 40) batches per case and round, 3 rounds.
 *
 * BENCH_CITUS_BASELINE=<file>[,<file>...]: instead, earlier definitions of citus mode's
 * functions against the current ones, on the Citus cluster alone: each file named as its
 * current definition in sql/citus (`git show <commit>:sql/citus/headcount_events_inserted.sql
 * > /tmp/base/headcount_events_inserted.sql`), the two sets applied in turn (A B, then B
 * A, BENCH_CITUS_ROUNDS rounds, default 6): events/s and the CPU of the coordinator's and
 * the workers' processes per event, medians, current / baseline.
 * There every event is of a visitor not seen before (each batch takes as many visitor
 * buckets as it can). Either way, BENCH_CITUS_BATCH (default 1,000) events a batch and
 * BENCH_CITUS_SITES (default 1,50) the cases' sites per batch.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createSql, type Sql } from '../src/db/client.js';
import type { LocalCitusCluster } from '../src/db/local-cluster.js';
import { SQL_DIR } from '../src/db/sql-objects.js';
import { type EventRow, insertEvents } from '../src/ingest/writer.js';
import { createLogger } from '../src/log.js';
import { startBenchClusters } from './clusters.js';
import { median } from './load.js';
import { table } from './report.js';
import { CLOCK_TICKS, postmasterPid, treeTicks } from './system.js';

const env = process.env;
const BATCH = Number(env.BENCH_CITUS_BATCH ?? 1000);
const SITES = (env.BENCH_CITUS_SITES ?? '1,50').split(',').map(Number);

const runId = Date.now();

function batchOf(n: number, sites: number): EventRow[] {
  const now = Date.now();
  return Array.from({ length: BATCH }, (_, j) => {
    const i = n * BATCH + j;
    return {
      site: `site-${i % sites}`,
      timeMs: now - 60_000 - (i % 3_600_000),
      kind: 'click',
      userId: env.BENCH_CITUS_BASELINE ? `new-${runId}-${i}` : `u${i % 50_000}`,
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

/** CPU ticks of the coordinator's and the workers' processes. */
function clusterTicks(citus: LocalCitusCluster): number {
  let sum = 0;
  for (const node of [citus, ...citus.workers]) {
    const pid = postmasterPid(node.dataDir);
    if (pid) sum += treeTicks(pid);
  }
  return sum;
}

/** BENCH_CITUS_BASELINE: the baseline's definitions and the current ones, alternated. */
async function compareDefinitions(citus: LocalCitusCluster, batches: number, baselineFiles: string): Promise<void> {
  const rounds = Number(env.BENCH_CITUS_ROUNDS ?? 6);
  const files = baselineFiles.split(',');
  const read = (names: string[]) => Promise.all(names.map((f) => readFile(f, 'utf8'))).then((d) => d.join('\n;\n'));
  const variants: [string, string][] = [
    ['baseline', await read(files)],
    ['current', await read(files.map((f) => path.join(SQL_DIR, 'citus', path.basename(f))))],
  ];
  const sql = createSql(citus.url, { max: 1, settings: { 'citus.create_object_propagation': 'deferred' } });
  const rows: string[][] = [];
  let next = 0;
  try {
    for (const sites of SITES) {
      const eps = variants.map(() => [] as number[]);
      const cpu = variants.map(() => [] as number[]);
      for (const [, definition] of variants) {
        await sql.unsafe(definition);
        await rate(sql, true, sites, next++, 1);
      }
      for (let round = 0; round < rounds; round++) {
        for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
          await sql.unsafe(variants[i]![1]);
          const ticks = clusterTicks(citus);
          eps[i]!.push(await rate(sql, true, sites, next, batches));
          cpu[i]!.push(((clusterTicks(citus) - ticks) * 1e6) / CLOCK_TICKS / (batches * BATCH));
          next += batches;
        }
      }
      for (const [i, [name]] of variants.entries()) {
        rows.push([
          name,
          String(sites),
          Math.round(median(eps[i]!)).toLocaleString('en-US'),
          median(cpu[i]!).toFixed(1),
          eps[i]!.map((r) => Math.round(r)).join(', '),
        ]);
      }
      const ratio = (m: number[][]) => (median(m[1]!) / median(m[0]!)).toFixed(3);
      rows.push(['current / baseline', String(sites), ratio(eps), ratio(cpu), '']);
    }
  } finally {
    await sql.unsafe(variants[1]![1]);
    await sql.end();
  }
  console.log(`\n${BATCH}-event batches of new visitors, ${batches} per round, ${rounds} rounds alternated (median):\n`);
  console.log(table(['definition', 'sites per batch', 'events/s', 'cluster CPU µs/event', 'rounds (events/s)'], rows));
}

async function main(): Promise<void> {
  const log = createLogger('warn');
  const batches = Number(env.BENCH_CITUS_BATCHES ?? 40);
  const { single, citus, stop } = await startBenchClusters(log);
  try {
    if (env.BENCH_CITUS_BASELINE) {
      await compareDefinitions(citus, batches, env.BENCH_CITUS_BASELINE);
      return;
    }
    const targets = [
      { name: 'postgres (1 node, trigger)', sql: createSql(single.url, { max: 1 }), citus: false },
      { name: 'citus (2 workers, 8 shards)', sql: createSql(citus.url, { max: 1 }), citus: true },
    ];
    const rows: string[][] = [];
    let next = 0;
    for (const sites of SITES) {
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
