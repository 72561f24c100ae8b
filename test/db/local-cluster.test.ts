import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { createSql } from '../../src/db/client.js';
import { ensurePostgres, freePort, type LocalCluster, startLocalCluster } from '../../src/db/local-cluster.js';
import { migrate } from '../../src/db/migrate.js';
import type { StorageMode } from '../../src/db/storage.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { createTestDatabase, databaseUrl, describeEachMode, first } from '../helpers/db.js';

const run = promisify(execFile);
const asPostgres = (file: string, args: string[]) =>
  process.getuid?.() === 0 ? run('runuser', ['-u', 'postgres', '--', file, ...args]) : run(file, args);
const log = createLogger('warn');

/** Who a connection is, and what it may do. */
async function whoAmI(url: string) {
  const sql = createSql(url, { max: 1 });
  try {
    return first(
      await sql<{ role: string; superuser: boolean; owns_database: boolean }[]>`
        select current_user as role, rolsuper as superuser,
               (select datdba = r.oid from pg_database where datname = current_database()) as owns_database
        from pg_roles r where rolname = current_user
      `,
    );
  } finally {
    await sql.end();
  }
}

/** A data folder the postgres system user can reach, removed after the test. */
async function dataFolder(cleanup: (() => Promise<void>)[]): Promise<string> {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'hc-lp-'));
  await fs.chmod(parent, 0o755);
  cleanup.push(() => fs.rm(parent, { recursive: true, force: true }));
  return path.join(parent, 'pg');
}

describe('the managed cluster: least privilege', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });

  it('connects the service as a role that owns its database and is no superuser; the superuser only sets up', async () => {
    const cluster = await startLocalCluster({ dataDir: await dataFolder(cleanup), port: await freePort(), log, throwaway: true });
    cleanup.push(() => cluster.stop());
    expect(await whoAmI(cluster.url)).toEqual({ role: 'headcount', superuser: false, owns_database: true });
    expect(await whoAmI(cluster.adminUrl)).toMatchObject({ role: 'headcount_admin', superuser: true });
    // The migrations run as that role, extensions made beforehand by the superuser.
    await migrate({ databaseUrl: cluster.url, storageMode: 'auto', log: silentLogger });
    const sql = createSql(cluster.url, { max: 1 });
    try {
      const [mode] = await sql`select storage_mode from headcount_settings`;
      expect(mode?.storage_mode).toBe(cluster.timescaledb ? 'timescaledb' : 'postgres');
      // What an injection could otherwise reach: a superuser's COPY ... PROGRAM.
      await expect(sql`copy (select 1) to program 'true'`).rejects.toMatchObject({ code: '42501' });
    } finally {
      await sql.end();
    }
  });

  it("opens the suite's databases as that role too, so a superuser-only statement in the code fails the tests", async () => {
    const db = await createTestDatabase('postgres');
    try {
      expect(await whoAmI(databaseUrl(new URL(db.url).pathname.slice(1)))).toEqual({
        role: 'headcount',
        superuser: false,
        owns_database: true,
      });
    } finally {
      await db.drop();
    }
  });
});

/**
 * A data folder of the previous release: `initdb -U headcount` made the service's role
 * the bootstrap superuser, which created and migrated the database and owns it all. (The
 * timescaledb half needs TimescaleDB preloaded: describeEachMode skips it otherwise.)
 */
describeEachMode('the managed cluster: a data folder of the previous release', (mode: StorageMode) => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const fn of cleanup.reverse()) await fn();
  });

  // initdb, two starts and stops of a cluster and a whole migration: ~5 s on a quiet machine,
  // over 30 s at a load of 15 on 2 cores. Its timeout guards against a hang; it bounds nothing.
  it('keeps working after the upgrade, its data owned by a role that is no superuser', async () => {
    const pg = await ensurePostgres(undefined, log);
    const dataDir = await dataFolder(cleanup);
    await fs.mkdir(dataDir, { mode: 0o700 });
    const pwFile = `${dataDir}.pw`;
    const password = 'old-release-password';
    await fs.writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (process.getuid?.() === 0) await run('chown', ['postgres:postgres', dataDir, pwFile]);
    await asPostgres(path.join(pg.binDir, 'initdb'), [
      '-D',
      dataDir,
      '-U',
      'headcount',
      `--pwfile=${pwFile}`,
      '--auth=scram-sha-256',
    ]);
    await fs.writeFile(`${dataDir}.credentials.json`, JSON.stringify({ password }), { mode: 0o600 });
    const port = await freePort();
    const settings = mode === 'timescaledb' ? `-c port=${port} -c shared_preload_libraries=timescaledb` : `-c port=${port}`;
    await asPostgres(path.join(pg.binDir, 'pg_ctl'), [
      'start',
      '-D',
      dataDir,
      '-w',
      '-l',
      `${dataDir}/server.log`,
      '-o',
      settings,
    ]);
    const old = `postgres://headcount:${password}@127.0.0.1:${port}`;
    const admin = createSql(`${old}/postgres`, { max: 1 });
    await admin`create database headcount`;
    await admin.end();
    await migrate({ databaseUrl: `${old}/headcount`, storageMode: mode, log: silentLogger });
    const before = createSql(`${old}/headcount`, { max: 1 });
    await before`insert into events (time, kind, user_id) select now() - i * interval '1 hour', 'collect', 'u' || i from generate_series(1, 30) i`;
    await before.end();
    await asPostgres(path.join(pg.binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w']);

    let cluster: LocalCluster | undefined = await startLocalCluster({ dataDir, port, log, throwaway: true });
    cleanup.push(() => cluster!.stop());
    expect(await whoAmI(cluster.url)).toEqual({ role: 'headcount', superuser: false, owns_database: true });
    expect(await whoAmI(cluster.adminUrl)).toMatchObject({ role: 'headcount_admin', superuser: true });
    // The old password is the superuser's now; the service's role has a new one.
    const creds = JSON.parse(await fs.readFile(`${dataDir}.credentials.json`, 'utf8')) as { password: string; admin: object };
    expect(creds.admin).toEqual({ role: 'headcount_admin', password });
    expect(creds.password).not.toBe(password);

    // The service's start: migrations (none pending or the new ones), a write, a read.
    await migrate({ databaseUrl: cluster.url, storageMode: 'auto', log: silentLogger });
    const sql = createSql(cluster.url, { max: 1 });
    try {
      expect(first(await sql`select storage_mode from headcount_settings`).storage_mode).toBe(mode);
      await sql`insert into events (time, kind, user_id) values (now(), 'collect', 'new')`;
      expect(first(await sql`select count(*)::int as n from events`).n).toBe(31);
      const owners = await sql<{ owner: string }[]>`
        select distinct pg_get_userbyid(c.relowner) as owner from pg_class c
        where c.relnamespace = 'public'::regnamespace and c.relname !~ '^(pg_|_)'
          and not exists (select 1 from pg_depend d where d.objid = c.oid and d.deptype = 'e')
      `;
      expect(owners).toEqual([{ owner: 'headcount' }]);
    } finally {
      await sql.end();
    }
    // A second start finds nothing left to do.
    await cluster.stop();
    cluster = await startLocalCluster({ dataDir, port, log, throwaway: true });
    expect(await whoAmI(cluster.url)).toMatchObject({ superuser: false, owns_database: true });
  }, 120_000);
});
