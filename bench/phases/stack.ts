/**
 * The first and last phases of npm run bench: the managed database with a fresh database
 * for the run, the service on it (WORKERS=1 and 2) and the references it is compared
 * with; and their teardown.
 */
import { type ChildProcess, fork } from 'node:child_process';
import path from 'node:path';
import { createSql } from '../../src/db/client.js';
import { freePort, prepareDatabase, startLocalCluster } from '../../src/db/local-cluster.js';
import { migrate, type MigrateOptions } from '../../src/db/migrate.js';
import type { StorageMode } from '../../src/db/storage.js';
import { createLogger } from '../../src/log.js';
import { type Seed000, startSeed000 } from '../seed000.js';
import { startService, stopChild } from '../service.js';
import { postmasterPid } from '../system.js';
import { type BenchContext, type Progress, RssSampler, type Settings } from './context.js';

const DB_NAME = 'headcount_bench';
/** How the comment on a database BENCH_KEEP=1 kept begins: a later run refuses to drop it unless BENCH_REPLACE_KEPT=1. */
const KEPT = 'kept by npm run bench';

/** The bench cluster (.data/bench-postgres on `pgPort`), a fresh migrated database, the service on it twice. */
export async function startStack(
  settings: Settings,
  progress: Progress,
  opts: { pgPort: number; storageMode: MigrateOptions['storageMode'] },
): Promise<BenchContext> {
  const log = createLogger('warn');
  const dataDir = path.resolve('.data/bench-postgres');
  progress.step('starting the managed local database (.data/bench-postgres) and a fresh database for the run');
  const cluster = await startLocalCluster({ dataDir, port: opts.pgPort, log });
  const adminUrl = cluster.adminUrl;
  {
    const admin = createSql(adminUrl, { max: 1 });
    try {
      const [kept]: [{ note: string | null }?] = await admin`
        select shobj_description(oid, 'pg_database') as note from pg_database where datname = ${DB_NAME}
      `;
      if (kept?.note?.startsWith(KEPT) && process.env.BENCH_REPLACE_KEPT !== '1') {
        await cluster.stop();
        throw new Error(
          `${DB_NAME} on .data/bench-postgres is a database a run kept (${kept.note}): ` +
            'BENCH_REPLACE_KEPT=1 to drop it for this run, or drop it yourself',
        );
      }
      await admin`drop database if exists ${admin(DB_NAME)} with (force)`;
    } finally {
      await admin.end();
    }
  }
  // Made by the cluster's setup superuser, owned by (and migrated as) the service's role.
  await prepareDatabase(adminUrl, DB_NAME, { timescaledb: cluster.timescaledb && opts.storageMode !== 'postgres' });
  const dbUrl = cluster.urlOf(DB_NAME);
  await migrate({ databaseUrl: dbUrl, storageMode: opts.storageMode, log });
  const pgPid = postmasterPid(dataDir);
  progress.note(`PostgreSQL postmaster pid ${pgPid ?? '? (CPU of PostgreSQL not split out)'}`);
  // It trusts its loopback proxy: the tracked-pageview row sends X-Forwarded-For (wrk.lua tracked).
  const service = await startService(dbUrl, 1, [], { env: { TRUST_PROXY: '127.0.0.1' } });
  const service2 = await startService(dbUrl, 2);
  const sql = createSql(dbUrl, { max: 4 });
  const storageMode = (await sql`select storage_mode from headcount_settings`)[0]?.storage_mode as StorageMode;
  progress.note(
    `headcount ${service.url} (WORKERS=1, pid ${service.pid}) and ${service2.url} (WORKERS=2, pid ${service2.pid}); storage mode ${storageMode}`,
  );
  const rss = new RssSampler(service.pid);
  return { settings, progress, cluster, adminUrl, dbName: DB_NAME, dbUrl, sql, pgPid, storageMode, service, service2, rss };
}

/**
 * The service (WORKERS=1) and the pool stop; the run's database is dropped, or with
 * BENCH_KEEP=1 kept and marked so (a comment on it) that a later run does not drop it
 * unasked; the cluster stops.
 */
export async function stopStack(ctx: BenchContext): Promise<void> {
  ctx.rss.stop(); // reportResults stops it too; BENCH_PHASES=dimensions does not run that, and its timer kept the run alive
  await stopChild(ctx.service.child);
  await ctx.sql.end();
  const admin = createSql(ctx.adminUrl, { max: 1 });
  if (ctx.settings.keep) {
    const note = `${KEPT} at ${new Date().toISOString()} (BENCH_KEEP=1, ${ctx.settings.volumeDays} days, ${ctx.storageMode} mode)`;
    await admin.unsafe(`comment on database ${DB_NAME} is '${note}'`);
  } else {
    await admin`drop database if exists ${admin(ctx.dbName)} with (force)`;
  }
  await admin.end();
  await ctx.cluster.stop();
}

export interface Forked {
  child: ChildProcess;
  url: string;
}

/** What headcount's cost is compared with; `seed` is undefined where seed 000's architecture cannot run here. */
export interface References {
  baseline: Forked;
  koa: Forked;
  seed: Seed000 | undefined;
  stop(): Promise<void>;
}

/** A reference server of bench/ on a free port, once it says it listens. */
async function startForked(file: string): Promise<Forked> {
  const port = await freePort();
  const child = fork(path.resolve(file), [String(port)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  await new Promise<void>((resolve) => child.once('message', () => resolve()));
  return { child, url: `http://127.0.0.1:${port}` };
}

export async function startReferences(progress: Progress): Promise<References> {
  progress.step('starting the references: bare node:http, Koa + @koa/router with no work, seed 000 (nginx + ngx_lua + Redis)');
  const baseline = await startForked('bench/baseline-server.mjs');
  const koa = await startForked('bench/koa-server.mjs');
  let seed: Seed000 | undefined;
  try {
    seed = await startSeed000();
  } catch (err) {
    progress.note(`SKIPPED seed 000's architecture: ${(err as Error).message.split('\n')[0]}`);
  }
  return {
    baseline,
    koa,
    seed,
    async stop() {
      await stopChild(baseline.child);
      await stopChild(koa.child);
      await seed?.stop();
    },
  };
}
