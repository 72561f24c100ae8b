import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createSql } from '../../src/db/client.js';
import {
  type CitusNodes,
  discardCluster,
  ensurePostgres,
  freePort,
  type LocalCitusCluster,
  type LocalCluster,
  prepareDatabase,
  startLocalCitusCluster,
  startLocalCluster,
  workerDataDir,
} from '../../src/db/local-cluster.js';
import { migrate } from '../../src/db/migrate.js';
import type { StorageMode } from '../../src/db/storage.js';
import { createLogger } from '../../src/log.js';

export interface TestDatabaseServer {
  /** A URL of the server's maintenance database, for CREATE/DROP DATABASE. */
  adminUrl: string;
  /**
   * The managed test cluster's application role (as the service's: owner of its
   * databases, no superuser), whose credentials the test databases are opened with;
   * undefined with TEST_DATABASE_URL, whose role is used for everything.
   */
  appUrl: string | undefined;
  /**
   * Storage modes this run tests: a migrated template database, `headcount_template_<mode>`,
   * for each but citus (see citus).
   */
  modes: StorageMode[];
  /**
   * A local Citus cluster of a coordinator and two workers, when Citus is installed: a
   * Citus database cannot be a template (CREATE DATABASE ... TEMPLATE copies one node's
   * files, not the shards on the workers nor their metadata), so each test database of
   * citus mode is made on every node and migrated (createTestDatabase).
   */
  citus: (CitusNodes & { appUrl: string }) | undefined;
}

declare module 'vitest' {
  export interface ProvidedContext {
    databaseServer: TestDatabaseServer;
  }
}

const log = createLogger(process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'warn');

const TEST_CLUSTER_PREFIX = 'headcount-test-';
/**
 * A Citus cluster's coordinator; its workers are <coordinator>-worker-<n>. A prefix of its
 * own: a run of a release before Citus clusters (another checkout on this machine) would
 * take a worker, which has no .owner file, for an abandoned cluster and stop it.
 */
const TEST_CITUS_PREFIX = 'headcount-citus-test-';

/**
 * A run killed before its teardown (Ctrl-C, a closed pipe) leaves its throwaway cluster
 * running: stop and remove those whose owning process is gone.
 */
async function discardAbandonedClusters(binDir: string): Promise<void> {
  const tmp = os.tmpdir();
  const names = await fs.readdir(tmp);
  // A cluster's folder, or its .owner file alone (a setup that failed part-way).
  const clusters = new Set(names.map((n) => n.replace(/\.owner$/, '')));
  for (const name of clusters) {
    // Workers go with their coordinator (below).
    const prefixed = name.startsWith(TEST_CLUSTER_PREFIX) || name.startsWith(TEST_CITUS_PREFIX);
    if (!prefixed || name.includes('.') || name.includes('-worker-')) continue;
    const dataDir = path.join(tmp, name);
    const owner = Number(await fs.readFile(`${dataDir}.owner`, 'utf8').catch(() => '0'));
    if (owner > 0 && processAlive(owner)) continue;
    await discardCluster(binDir, dataDir);
    // A Citus cluster's workers, beside their coordinator.
    for (let n = 1; n <= 2; n++) await discardCluster(binDir, workerDataDir(dataDir, n));
    await fs.rm(`${dataDir}.owner`, { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Refuses any database that was not made for tests: the suite drops and creates databases. */
function assertTestServer(url: string): void {
  const name = new URL(url).pathname.slice(1);
  if (!/test/i.test(name)) {
    throw new Error(`TEST_DATABASE_URL must name a database made for tests (with "test" in its name), not "${name}"`);
  }
}

async function timescaledbUsable(adminUrl: string): Promise<boolean> {
  const sql = createSql(adminUrl, { max: 1 });
  try {
    const [row]: [{ usable: boolean }?] = await sql`
      select exists (select 1 from pg_available_extensions where name = 'timescaledb')
        and current_setting('shared_preload_libraries') ~ 'timescaledb' as usable
    `;
    return row?.usable ?? false;
  } finally {
    await sql.end();
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let cluster: LocalCluster | undefined;
  let adminUrl: string;
  let appUrl: string | undefined;
  if (process.env.TEST_DATABASE_URL) {
    assertTestServer(process.env.TEST_DATABASE_URL);
    adminUrl = process.env.TEST_DATABASE_URL;
  } else {
    const pg = await ensurePostgres(process.env.LOCAL_PG_BIN_DIR, log);
    await discardAbandonedClusters(pg.binDir);
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), TEST_CLUSTER_PREFIX));
    await fs.writeFile(`${dataDir}.owner`, String(process.pid));
    cluster = await startLocalCluster({
      dataDir,
      port: await freePort(),
      binDir: pg.binDir,
      log,
      throwaway: true,
      // Durability is not under test here; speed is welcome.
      settings: {
        fsync: 'off',
        full_page_writes: 'off',
        max_connections: '200',
        // test/read/threshold-race.test.ts holds a write between TimescaleDB's decision to
        // log it and its commit with PREPARE TRANSACTION.
        max_prepared_transactions: '4',
      },
      // No background jobs: template databases must have no sessions, and tests run
      // policies themselves (run_job) when they test them.
      timescaledbSettings: { 'timescaledb.max_background_workers': '0' },
    });
    adminUrl = cluster.adminUrl;
    appUrl = cluster.urlOf('postgres');
  }

  // TEST_STORAGE_MODES=postgres runs one mode only, e.g. to see the suite as a machine
  // without TimescaleDB runs it.
  const wanted = (process.env.TEST_STORAGE_MODES ?? 'postgres,timescaledb,citus').split(',').map((m) => m.trim());
  const modes: StorageMode[] = [];
  if (wanted.includes('postgres')) modes.push('postgres');
  // TEST_REQUIRE_MODES=timescaledb (CI, where the project installed it) makes a missing
  // mode an error instead of a skipped half.
  const required = (process.env.TEST_REQUIRE_MODES ?? '').split(',').map((m) => m.trim());
  if (wanted.includes('timescaledb')) {
    if (await timescaledbUsable(adminUrl)) modes.push('timescaledb');
    else if (required.includes('timescaledb'))
      throw new Error(
        'TEST_REQUIRE_MODES names timescaledb, but TimescaleDB is not installed (or not preloaded): run npm run setup:timescaledb -- <source archive> as root',
      );
    else
      console.log(
        'TimescaleDB is not installed (or not preloaded): every timescaledb-mode test is SKIPPED; postgres mode runs in full (npm run setup:timescaledb -- <source archive> installs it).',
      );
  }
  if (!modes.includes('timescaledb'))
    console.log('timescaledb storage mode: SKIPPED (see the list of skipped suites at the end)');

  // Citus: a cluster of its own (Citus and TimescaleDB cannot be preloaded together).
  let citusCluster: LocalCitusCluster | undefined;
  if (wanted.includes('citus') && !process.env.TEST_DATABASE_URL) {
    const pg = await ensurePostgres(process.env.LOCAL_PG_BIN_DIR, log);
    if (pg.citus || required.includes('citus')) {
      // Without Citus and required, this fails saying how to install it.
      const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), TEST_CITUS_PREFIX));
      await fs.writeFile(`${dataDir}.owner`, String(process.pid));
      citusCluster = await startLocalCitusCluster({
        dataDir,
        port: await freePort(),
        workerPorts: 'free',
        workers: 2,
        binDir: pg.binDir,
        log,
        throwaway: true,
        settings: { fsync: 'off', full_page_writes: 'off' },
      });
      modes.push('citus');
    } else {
      console.log(
        'Citus is not installed: every citus-mode test is SKIPPED (npm run setup:citus installs it; TEST_REQUIRE_MODES=citus makes this an error).',
      );
    }
  }

  const admin = createSql(adminUrl, { max: 1 });
  try {
    for (const mode of modes.filter((m) => m !== 'citus')) {
      const name = `headcount_template_${mode}`;
      await admin`drop database if exists ${admin(name)}`;
      // As the service's managed cluster sets up its database: owned by the application
      // role, the extensions created by the superuser, then migrated by the owner.
      if (appUrl) await prepareDatabase(adminUrl, name, { timescaledb: mode === 'timescaledb' });
      else await admin`create database ${admin(name)}`;
      const url = new URL(appUrl ?? adminUrl);
      url.pathname = `/${name}`;
      await migrate({ databaseUrl: url.toString(), storageMode: mode, log });
      await admin`alter database ${admin(name)} with is_template true allow_connections false`;
    }
  } finally {
    await admin.end();
  }
  project.provide('databaseServer', {
    adminUrl,
    appUrl,
    modes,
    citus: citusCluster && { ...citusCluster.nodes, appUrl: citusCluster.urlOf('postgres') },
  });

  return async () => {
    if (citusCluster) {
      await citusCluster.stop();
      await fs.rm(`${citusCluster.dataDir}.owner`, { force: true });
    }
    if (cluster) {
      await cluster.stop();
      await fs.rm(`${cluster.dataDir}.owner`, { force: true });
      return;
    }
    const sql = createSql(adminUrl, { max: 1 });
    for (const mode of modes.filter((m) => m !== 'citus')) {
      const name = `headcount_template_${mode}`;
      await sql`alter database ${sql(name)} with is_template false`;
      await sql`drop database if exists ${sql(name)}`;
    }
    await sql.end();
  };
}
