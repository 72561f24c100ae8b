/**
 * npm run bench:ab — one change measured against its baseline in the same run: two
 * databases on the bench cluster, a service on each, wrk rounds A B, B A, A B …,
 * medians. B differs by any of:
 *   BENCH_AB_SQL_B   SQL run on B's database after the migrations (e.g. a storage setting)
 *   BENCH_AB_ENV_B   service settings for B, "NAME=value,NAME=value" (e.g. batch sizing)
 *   BENCH_AB_DIST_B  another build's server.js (a prototype in src/, built elsewhere)
 *   BENCH_AB_NODE_ARGS_B  node flags for B, after npm start's own (e.g. --max-semi-space-size=16)
 * and A by BENCH_AB_SQL_A / BENCH_AB_ENV_A / BENCH_AB_DIST_A. Before the counted rounds,
 * each variant runs BENCH_AB_WARMUP_S (10) seconds and its database is analyzed.
 * BENCH_AB_MODE is wrk.lua's mode; a word $KEY in it becomes an ingest key of site
 * "default" made in each variant's database (e.g. "events 1 $KEY" with
 * BENCH_AB_ENV_B=V1_AUTH=keys: what a key and its rate limit cost).
 */
import path from 'node:path';
import { createSql } from '../src/db/client.js';
import { prepareDatabase, startLocalCluster } from '../src/db/local-cluster.js';
import { migrate } from '../src/db/migrate.js';
import { createLogger } from '../src/log.js';
import { median } from './load.js';
import { scrapeBatches } from './server-metrics.js';
import { table } from './report.js';
import { parseEnv, startService, stopChild, withBenchKey } from './service.js';
import { CLOCK_TICKS, postmasterPid, settle } from './system.js';
import { ensureWrk, wrk, type WrkResult } from './wrk.js';

const env = process.env;
const runs = Number(env.BENCH_RUNS ?? 4);
const durationS = Number(env.BENCH_DURATION_S ?? 8);
const connections = Number(env.BENCH_CONNECTIONS ?? 64);
const warmupS = Number(env.BENCH_AB_WARMUP_S ?? 10);
const mode = (env.BENCH_AB_MODE ?? 'collect').split(' ');

async function main(): Promise<void> {
  if (!(await ensureWrk())) process.exit(2);
  const log = createLogger('warn');
  const dataDir = path.resolve('.data/bench-postgres');
  const cluster = await startLocalCluster({ dataDir, port: Number(env.BENCH_PG_PORT ?? 54339), log });
  const pgPid = postmasterPid(dataDir);
  const admin = createSql(cluster.adminUrl, { max: 1 });
  const variants = [] as {
    name: string;
    dbUrl: string;
    mode: string[];
    url: string;
    pid: number;
    stop: () => Promise<void>;
    describe: string;
  }[];
  for (const name of ['A', 'B']) {
    const db = `headcount_ab_${name.toLowerCase()}`;
    await admin`drop database if exists ${admin(db)} with (force)`;
    await prepareDatabase(cluster.adminUrl, db, { timescaledb: cluster.timescaledb });
    const dbUrl = cluster.urlOf(db);
    await migrate({ databaseUrl: dbUrl, storageMode: (env.STORAGE_MODE as 'auto' | undefined) ?? 'auto', log });
    const extraSql = env[`BENCH_AB_SQL_${name}`];
    if (extraSql) {
      const sql = createSql(dbUrl, { max: 1 });
      await sql.unsafe(extraSql);
      await sql.end();
    }
    const variantMode = await withBenchKey(dbUrl, mode);
    const serviceEnv = parseEnv(env[`BENCH_AB_ENV_${name}`]);
    const script = env[`BENCH_AB_DIST_${name}`];
    const nodeArgs = (env[`BENCH_AB_NODE_ARGS_${name}`] ?? '').split(' ').filter(Boolean);
    const s = await startService(dbUrl, 1, nodeArgs, { ...(script ? { script } : {}), env: serviceEnv });
    const describe = [
      extraSql && `SQL: ${extraSql}`,
      Object.keys(serviceEnv).length && `env: ${env[`BENCH_AB_ENV_${name}`]}`,
      script && `build: ${script}`,
      nodeArgs.length && `node ${nodeArgs.join(' ')}`,
    ]
      .filter(Boolean)
      .join('; ');
    variants.push({
      name,
      dbUrl,
      mode: variantMode,
      url: s.url,
      pid: s.pid,
      stop: () => stopChild(s.child),
      describe: describe || 'as built (dist/)',
    });
    console.log(`${name}: ${describe || 'as built (dist/)'}`);
  }
  // Not counted: a round of each, then statistics for every table. A fresh database's
  // tables have none until autovacuum gets to them, and until then some plans are far off
  // (the visits' lookups cost PostgreSQL ~4 ms per GET /collect instead of ~70 µs).
  for (const v of variants) {
    await wrk({ url: v.url, connections, durationS: warmupS, mode: v.mode });
    const sql = createSql(v.dbUrl, { max: 1 });
    await sql`analyze`;
    await sql.end();
  }
  const results: Record<string, WrkResult[]> = { A: [], B: [] };
  if (pgPid) await settle(pgPid, {});
  for (let run = 1; run <= runs; run++) {
    // A B, then B A: whatever the database accumulates during a round (rows, dead tuples,
    // a checkpoint) falls on each variant alike.
    for (const v of run % 2 === 1 ? variants : [...variants].reverse()) {
      const before = await scrapeBatches(v.url);
      const r = await wrk({ url: v.url, connections, durationS, mode: v.mode, account: { service: v.pid, store: pgPid } });
      const after = await scrapeBatches(v.url);
      const batch = before && after ? (after.rows - before.rows) / (after.flushes - before.flushes) : NaN;
      // The round's tail is the round's: the work its load set off and PostgreSQL was
      // still doing when wrk stopped (the roller draining the queue, autovacuum of what
      // the round wrote, the checkpoint it filled). Left to whatever ran next, an A/A run
      // gave PostgreSQL CPU B / A 0.79; counted here, 0.98 and 1.02 (why A was charged
      // more is not established: docs/benchmarks.md, "bench:ab").
      const tail = pgPid ? await settle(pgPid, { service: v.pid, store: pgPid }) : { parts: {}, waitedMs: 0 };
      const tailUs = (name: string): number => (((tail.parts[name] ?? 0) / CLOCK_TICKS) * 1e6) / r.requests;
      for (const name of ['service', 'store']) r.cpu.parts[name] = (r.cpu.parts[name] ?? 0) + tailUs(name);
      results[v.name]!.push(r);
      console.log(
        `round ${run} ${v.name}: ${Math.round(r.requestsPerSec)} req/s, p99 ${r.p99Ms.toFixed(1)} ms, service ${r.cpu.parts.service?.toFixed(1)} µs/req, PostgreSQL ${r.cpu.parts.store?.toFixed(1)} µs/req (of it after the load: ${tailUs('store').toFixed(1)}, ${(tail.waitedMs / 1000).toFixed(1)} s), other ${r.cpu.otherUs.toFixed(1)} µs/req, non-2xx ${r.non2xx}, errors ${r.errors}, mean batch ${batch.toFixed(1)} rows`,
      );
    }
  }
  const med = (name: string, f: (r: WrkResult) => number): number => median(results[name]!.map(f));
  const row = (name: string): string[] => [
    name,
    Math.round(med(name, (r) => r.requestsPerSec)).toLocaleString('en-US'),
    med(name, (r) => r.p99Ms).toFixed(1),
    med(name, (r) => r.cpu.parts.service ?? NaN).toFixed(1),
    med(name, (r) => r.cpu.parts.store ?? NaN).toFixed(1),
    med(name, (r) => (r.cpu.parts.service ?? NaN) + (r.cpu.parts.store ?? NaN)).toFixed(1),
    results[name]!.map((r) => Math.round(r.requestsPerSec)).join(', '),
  ];
  console.log(`\n${mode.join(' ')}, wrk -t1 -c${connections} -d${durationS}s, ${runs} rounds A B, B A, …, medians\n`);
  console.log(
    table(
      ['variant', 'req/s', 'p99 ms', 'service µs/req', 'PostgreSQL µs/req', 'stack µs/req', 'req/s per round'],
      [row('A'), row('B')],
    ),
  );
  const ratio = (f: (r: WrkResult) => number): string => (med('B', f) / med('A', f)).toFixed(2);
  console.log(
    `\nB / A: req/s ${ratio((r) => r.requestsPerSec)}, service CPU ${ratio((r) => r.cpu.parts.service ?? NaN)}, PostgreSQL CPU ${ratio((r) => r.cpu.parts.store ?? NaN)}`,
  );
  for (const v of variants) await v.stop();
  for (const name of ['a', 'b']) await admin`drop database if exists ${admin(`headcount_ab_${name}`)} with (force)`;
  await admin.end();
  await cluster.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
