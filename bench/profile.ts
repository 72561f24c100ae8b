/**
 * npm run bench:profile — where a durable GET /collect spends its CPU, under the same
 * wrk load as npm run bench: the service under `node --cpu-prof` (top functions by self
 * time, and by package), PostgreSQL through pg_stat_statements (preloaded on a cluster
 * of its own, nested statements included: the trigger's work shows) and, when perf is
 * there and allowed, perf's view of the PostgreSQL processes (top symbols).
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSql } from '../src/db/client.js';
import { createLogger } from '../src/log.js';
import { benchDatabase } from './database.js';
import { table } from './report.js';
import { parseEnv, startService, stopChild, withBenchKey } from './service.js';
import { childPids, postmasterPid } from './system.js';
import { ensureWrk, wrk } from './wrk.js';

const execFileAsync = promisify(execFile);
const env = process.env;
const durationS = Number(env.BENCH_PROFILE_S ?? 15);
const connections = Number(env.BENCH_CONNECTIONS ?? 64);
/** wrk.lua's mode, e.g. "collect", "analytics", "events 1 $KEY" (see withBenchKey). */
const modeWords = (env.BENCH_PROFILE_MODE ?? 'collect').split(' ');
const top = Number(env.BENCH_PROFILE_TOP ?? 25);

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** Top functions by self time and self time by package, from a .cpuprofile. */
function summarizeProfile(file: string): { functions: string[][]; packages: string[][] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; startTime: number; endTime: number };
  const total = profile.nodes.reduce((n, node) => n + (node.hitCount ?? 0), 0);
  const idle = profile.nodes
    .filter((n) => n.callFrame.functionName === '(idle)')
    .reduce((n, node) => n + (node.hitCount ?? 0), 0);
  const busy = total - idle;
  const byFunction = new Map<string, number>();
  const byPackage = new Map<string, number>();
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0;
    if (hits === 0 || node.callFrame.functionName === '(idle)') continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url.replace(/^file:\/\//, '').replace(`${process.cwd()}/`, '');
    const key = `${functionName || '(anonymous)'} ${where ? `${where}:${lineNumber + 1}` : ''}`.trim();
    byFunction.set(key, (byFunction.get(key) ?? 0) + hits);
    const pkg =
      /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(where)?.[1] ??
      (where.startsWith('node:')
        ? 'node: (core JS)'
        : where.startsWith('dist/')
          ? 'headcount dist/'
          : where
            ? where
            : functionName);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + hits);
  }
  const pct = (hits: number): string => `${((hits / busy) * 100).toFixed(1)} %`;
  const sorted = (m: Map<string, number>, n: number): string[][] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => [pct(v), k]);
  return { functions: sorted(byFunction, top), packages: sorted(byPackage, 15) };
}

async function main(): Promise<void> {
  if (!(await ensureWrk())) process.exit(2);
  const log = createLogger('warn');
  const dataDir = path.resolve('.data/bench-profile-postgres');
  const db = await benchDatabase('headcount_profile', log, {
    dataDir,
    port: Number(env.BENCH_PROFILE_PG_PORT ?? 54338),
    timescaledbSettings: { shared_preload_libraries: 'timescaledb,pg_stat_statements' },
    settings: { 'pg_stat_statements.track': 'all', 'pg_stat_statements.max': '1000' },
  });
  const dbUrl = db.url;
  const sql = createSql(dbUrl, { max: 1 });
  let statements = true;
  const admin = createSql(db.adminUrl, { max: 1 });
  try {
    await admin`create extension if not exists pg_stat_statements`;
  } catch (err) {
    statements = false;
    console.log(`SKIPPED pg_stat_statements: ${(err as Error).message}`);
  }
  const [{ storage_mode: storageMode }] = (await sql`select storage_mode from headcount_settings`) as unknown as [
    { storage_mode: string },
  ];
  const profDir = path.resolve('bench/results/profile');
  rmSync(profDir, { recursive: true, force: true });
  mkdirSync(profDir, { recursive: true });
  const mode = await withBenchKey(dbUrl, modeWords);
  // BENCH_PROFILE_ENV: service settings, "NAME=value,NAME=value" (e.g. V1_AUTH=keys).
  const service = await startService(dbUrl, 1, ['--cpu-prof', `--cpu-prof-dir=${profDir}`], {
    env: parseEnv(env.BENCH_PROFILE_ENV),
  });
  const pgPid = postmasterPid(dataDir);
  console.log(`profiling ${modeWords.join(' ')} for ${durationS} s at ${connections} connections, ${storageMode} mode`);

  // Warm up (JIT, pool, caches) and analyze (steady state: see bench/phases/cost.ts), then
  // reset PostgreSQL's statistics.
  await wrk({ url: service.url, connections, durationS: 3, mode });
  await sql`analyze`;
  if (statements) await admin`select pg_stat_statements_reset()`;
  await admin.end();

  // perf on PostgreSQL's backends while wrk runs, if it is there and allowed.
  let perfData: string | undefined;
  // Its end, listened for from the start: it can end before wrk does (its `sleep` runs as
  // long as wrk), and a listener added after its exit waited forever.
  let perfExited: Promise<unknown> | undefined;
  if (env.BENCH_PERF !== '0' && existsSync('/usr/bin/perf') && pgPid) {
    perfData = path.join(profDir, 'postgres.perf.data');
    const pids = [pgPid, ...childPids(pgPid)].join(',');
    const perf = spawn(
      '/usr/bin/perf',
      ['record', '-q', '-F', '499', '-g', '-o', perfData, '-p', pids, '--', 'sleep', String(durationS)],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    perfExited = new Promise((resolve) => perf.once('exit', resolve));
    perf.stderr?.on('data', (d: Buffer) => process.stderr.write(`perf: ${d.toString()}`));
  }
  const r = await wrk({
    url: service.url,
    connections,
    durationS,
    mode,
    account: { service: service.pid, store: pgPid },
  });
  console.log(
    `${Math.round(r.requestsPerSec)} req/s, p99 ${r.p99Ms.toFixed(1)} ms; CPU/req: service ${r.cpu.parts.service?.toFixed(1)} µs, PostgreSQL ${r.cpu.parts.store?.toFixed(1)} µs, wrk ${r.cpu.wrkUs.toFixed(1)} µs, other ${r.cpu.otherUs.toFixed(1)} µs`,
  );
  await perfExited;

  let pgRows: string[][] = [];
  if (statements) {
    const rows = await sql<{ calls: number; total_ms: number; mean_us: number; rows: number; query: string }[]>`
      select calls::int8, round(total_exec_time::numeric, 1)::float8 as total_ms,
             round((total_exec_time / greatest(calls, 1) * 1000)::numeric, 1)::float8 as mean_us,
             rows::int8, regexp_replace(query, '\\s+', ' ', 'g') as query
      from pg_stat_statements
      where dbid = (select oid from pg_database where datname = current_database())
      order by total_exec_time desc
      limit 12
    `;
    pgRows = rows.map((row) => [
      String(row.calls),
      String(row.total_ms),
      String(row.mean_us),
      String(row.rows),
      row.query.slice(0, 110),
    ]);
  }
  await stopChild(service.child);
  await sql.end();
  await db.close();

  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  console.log(
    `\nnode --cpu-prof of the service (${file ? path.join('bench/results/profile', file) : 'no profile written'}): self time, share of busy samples\n`,
  );
  if (file) {
    const s = summarizeProfile(path.join(profDir, file));
    console.log(table(['self', 'function'], s.functions));
    console.log('');
    console.log(table(['self', 'package'], s.packages));
  }
  if (statements) {
    console.log(`\npg_stat_statements (track = all: statements inside the trigger too), by total time during ${durationS} s\n`);
    console.log(table(['calls', 'total ms', 'mean µs', 'rows', 'query'], pgRows));
  }
  if (perfData && existsSync(perfData)) {
    try {
      const { stdout } = await execFileAsync(
        '/usr/bin/perf',
        ['report', '-i', perfData, '--stdio', '--no-children', '--sort', 'comm,dso,symbol', '--percent-limit', '1', '-g', 'none'],
        { maxBuffer: 64 * 1024 * 1024 },
      );
      console.log('\nperf report of the PostgreSQL processes (self, >= 1 %)\n');
      console.log(
        stdout
          .split('\n')
          .filter((l) => l.trim() && !l.startsWith('#'))
          .slice(0, 30)
          .join('\n'),
      );
    } catch (err) {
      console.log(`perf report failed: ${(err as Error).message.split('\n')[0]}`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
