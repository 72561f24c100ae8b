import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import type { Logger } from '../log.js';

const execFileAsync = promisify(execFile);

/**
 * A PostgreSQL cluster that headcount creates and runs itself, with the machine's
 * PostgreSQL binaries: the default database of `npm start` (in a data folder of the
 * project) and the throwaway database of the test suite.
 */
export interface LocalCluster {
  /**
   * Connection URL of the `headcount` database as the `headcount` role, which owns it and
   * is no superuser (password authentication over loopback): what the service, its
   * migrations, `npm run keys` and `npm run psql` use.
   */
  readonly url: string;
  /** The cluster's superuser (headcount_admin) on the maintenance database: setting up only. */
  readonly adminUrl: string;
  /** The URL of another database of this cluster, as the `headcount` role. */
  urlOf(database: string): string;
  readonly dataDir: string;
  readonly port: number;
  /** Whether TimescaleDB's library is installed and was preloaded. */
  readonly timescaledb: boolean;
  /** Whether Citus was preloaded (a node of a local Citus cluster: startLocalCitusCluster). */
  readonly citus: boolean;
  /** Stops the server if this process started it; removes a throwaway cluster's files. */
  stop(): Promise<void>;
  /** Stops the server at once, as a crash would (pg_ctl stop -m immediate): for fault tests. */
  crash(): Promise<void>;
  /** Starts the server again after crash(). */
  restart(): Promise<void>;
}

export interface LocalClusterOptions {
  dataDir: string;
  port: number;
  binDir?: string | undefined;
  log: Logger;
  /** Extra server settings (`-c name=value`), e.g. `fsync: 'off'` for tests. */
  settings?: Record<string, string>;
  /** Extra settings that only apply when TimescaleDB is preloaded. */
  timescaledbSettings?: Record<string, string>;
  /**
   * Preload Citus instead of TimescaleDB (the two are incompatible): a node of a local
   * Citus cluster. Its databases get the citus extension, and no timescaledb.
   */
  citus?: boolean;
  /**
   * A cluster whose credentials this one takes at its creation (the same passwords for
   * the same roles): the nodes of a Citus cluster, which connect to each other as the
   * user of the session (see startLocalCitusCluster).
   */
  credentialsOf?: string;
  /** Remove the data folder on stop (test clusters). */
  throwaway?: boolean;
}

export class LocalClusterError extends Error {
  override name = 'LocalClusterError';
}

const DATABASE = 'headcount';
/** The application's role: owns the database and everything in it; no superuser. */
export const APP_ROLE = 'headcount';
/** The cluster's bootstrap superuser: creates the role, the database and the extensions. */
const ADMIN_ROLE = 'headcount_admin';
const isRoot = (): boolean => process.getuid?.() === 0;

async function run(file: string, args: string[], opts: { asPostgres?: boolean } = {}): Promise<string> {
  // initdb and the server refuse to run as root: hand them to the postgres system user.
  const [cmd, argv] = opts.asPostgres && isRoot() ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
  try {
    const { stdout } = await execFileAsync(cmd, argv, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string };
    const output = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim();
    throw new LocalClusterError(`${path.basename(file)} ${args.join(' ')} failed${output ? `:\n${output}` : `: ${e.message}`}`);
  }
}

export interface PgInstallation {
  binDir: string;
  major: number;
  shareDir: string;
  libDir: string;
  hll: boolean;
  timescaledb: boolean;
  /** Citus' library (npm run setup:citus). */
  citus: boolean;
}

/** Finds the newest PostgreSQL server installation (or the one in `binDir`). */
export async function findPostgres(binDir?: string): Promise<PgInstallation> {
  const candidates: string[] = [];
  if (binDir) candidates.push(binDir);
  else {
    const root = '/usr/lib/postgresql';
    const versions = existsSync(root) ? await fs.readdir(root) : [];
    versions.sort((a, b) => Number(b) - Number(a)).forEach((v) => candidates.push(path.join(root, v, 'bin')));
    try {
      candidates.push((await run('pg_config', ['--bindir'])).trim());
    } catch {
      // no pg_config on PATH: the Debian layout above is the only place left to look
    }
  }
  const found = candidates.find((dir) => existsSync(path.join(dir, 'initdb')) && existsSync(path.join(dir, 'pg_ctl')));
  if (!found) {
    throw new LocalClusterError(
      binDir
        ? `LOCAL_PG_BIN_DIR=${binDir} holds no initdb/pg_ctl`
        : 'no PostgreSQL server binaries found: install them (Debian: apt-get install postgresql) or set DATABASE_URL',
    );
  }
  const version = await run(path.join(found, 'postgres'), ['--version']);
  const major = Number(/(\d+)(?:\.\d+)?/.exec(version)?.[1]);
  const pgConfig = path.join(found, 'pg_config');
  const shareDir = existsSync(pgConfig) ? (await run(pgConfig, ['--sharedir'])).trim() : `/usr/share/postgresql/${major}`;
  const libDir = existsSync(pgConfig) ? (await run(pgConfig, ['--pkglibdir'])).trim() : `/usr/lib/postgresql/${major}/lib`;
  const has = (ext: string): boolean =>
    existsSync(path.join(shareDir, 'extension', `${ext}.control`)) && existsSync(path.join(libDir, `${ext}.so`));
  return { binDir: found, major, shareDir, libDir, hll: has('hll'), timescaledb: has('timescaledb'), citus: has('citus') };
}

/** Whether this process may install Debian packages: root, with apt-get. */
export const canApt = (): boolean => isRoot() && existsSync('/usr/bin/apt-get');

/** Installs a Debian package with apt-get (as root; see canApt), updating the lists when a first try fails. */
export async function aptInstall(pkg: string, log: Logger): Promise<void> {
  log.info({ package: pkg }, 'installing a system package');
  try {
    await run('apt-get', ['install', '-y', '-q', pkg]);
  } catch {
    // A fresh machine may have no package lists yet.
    await run('apt-get', ['update', '-q']);
    await run('apt-get', ['install', '-y', '-q', pkg]);
  }
}

/**
 * Finds the PostgreSQL server and makes sure the `hll` extension is installed,
 * installing Debian's packages when this process may (root with apt-get); otherwise
 * the error names the package to install.
 */
export async function ensurePostgres(binDir: string | undefined, log: Logger): Promise<PgInstallation> {
  let pg: PgInstallation;
  try {
    pg = await findPostgres(binDir);
  } catch (err) {
    if (binDir || !canApt()) throw err;
    await aptInstall('postgresql', log);
    pg = await findPostgres(binDir);
  }
  if (pg.hll) return pg;
  const pkg = `postgresql-${pg.major}-hll`;
  if (!canApt()) {
    throw new LocalClusterError(
      `the PostgreSQL extension hll is not installed: install the package ${pkg} (apt-get install ${pkg})`,
    );
  }
  await aptInstall(pkg, log);
  const after = await findPostgres(pg.binDir);
  if (!after.hll) throw new LocalClusterError(`installed ${pkg} but hll.control is still missing under ${pg.shareDir}`);
  return after;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

async function ensureOwnedByPostgres(dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  if (isRoot()) await run('chown', ['postgres:postgres', dir]);
  await fs.chmod(dir, 0o700);
}

interface Credentials {
  /** The application role's (APP_ROLE). */
  password: string;
  /** The superuser's; absent in a cluster made before v0.3, whose APP_ROLE was its superuser. */
  admin?: { role: string; password: string };
}

const newPassword = (): string => randomBytes(18).toString('base64url');

async function writeCredentials(dataDir: string, creds: Credentials): Promise<void> {
  // Whole or not at all: a crash mid-write must not lose the superuser's password.
  const file = credentialsFile(dataDir);
  await fs.writeFile(`${file}.tmp`, JSON.stringify(creds), { mode: 0o600 });
  await fs.rename(`${file}.tmp`, file);
}

function credentialsFile(dataDir: string): string {
  // Beside the data folder, not in it: the server owns what is inside.
  return `${dataDir.replace(/\/+$/, '')}.credentials.json`;
}

async function initCluster(pg: PgInstallation, dataDir: string, log: Logger, shared?: Credentials): Promise<void> {
  log.info({ dataDir, version: pg.major }, 'creating a local PostgreSQL cluster');
  await fs.mkdir(path.dirname(dataDir), { recursive: true });
  await ensureOwnedByPostgres(dataDir);
  const password = shared?.admin?.password ?? newPassword();
  const pwDir = await fs.mkdtemp(path.join(os.tmpdir(), 'headcount-initdb-'));
  const pwFile = path.join(pwDir, 'pw');
  try {
    await fs.writeFile(pwFile, `${password}\n`, { mode: 0o600 });
    if (isRoot()) await run('chown', ['-R', 'postgres:postgres', pwDir]);
    await run(
      path.join(pg.binDir, 'initdb'),
      ['-D', dataDir, '-U', ADMIN_ROLE, `--pwfile=${pwFile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C'],
      { asPostgres: true },
    ).catch((err: unknown) => {
      const hint = isRoot()
        ? ` (the postgres system user must be able to reach ${dataDir}: every parent folder needs o+x, or set LOCAL_PG_DATA_DIR elsewhere)`
        : '';
      throw new LocalClusterError(`${(err as Error).message}${hint}`);
    });
  } finally {
    await fs.rm(pwDir, { recursive: true, force: true });
  }
  await writeCredentials(dataDir, { password: shared?.password ?? newPassword(), admin: { role: ADMIN_ROLE, password } });
}

const readCredentials = async (dataDir: string): Promise<Credentials> =>
  JSON.parse(await fs.readFile(credentialsFile(dataDir), 'utf8')) as Credentials;

async function isRunning(pg: PgInstallation, dataDir: string): Promise<boolean> {
  try {
    await run(path.join(pg.binDir, 'pg_ctl'), ['status', '-D', dataDir], { asPostgres: true });
    return true;
  } catch {
    return false;
  }
}

/** Passwords here are base64url (newPassword): safe inside a quoted SQL literal. */
const literal = (password: string): string => {
  if (!/^[A-Za-z0-9_-]+$/.test(password)) throw new LocalClusterError('unexpected characters in a stored password');
  return `'${password}'`;
};

/**
 * A cluster made before v0.3 has APP_ROLE as its bootstrap superuser, owning everything.
 * That role cannot stop being a superuser (it owns the system catalogs), so it becomes
 * ADMIN_ROLE (renamed by a short-lived second superuser: no session may rename its own
 * role) keeping its password, and a new APP_ROLE is made; setUp() then hands it the
 * database. Each step can be repeated after a crash: the old password opens ADMIN_ROLE
 * once the rename is done.
 */
async function separateRoles(
  base: (role: string, password: string) => string,
  old: Credentials,
  log: Logger,
): Promise<Credentials> {
  const oldSuperuser = postgres(base(APP_ROLE, old.password), { max: 1, onnotice: () => {} });
  const temporary = { role: 'headcount_upgrade', password: newPassword() };
  let renamed = false;
  try {
    const [row]: [{ bootstrap: boolean }?] = await oldSuperuser`
      select rolsuper and oid = 10 as bootstrap from pg_roles where rolname = current_user
    `;
    if (row?.bootstrap) {
      log.info(
        { superuser: ADMIN_ROLE, role: APP_ROLE },
        'giving the local cluster a superuser of its own; the service role will be no superuser',
      );
      await oldSuperuser.unsafe(`drop role if exists ${temporary.role}`);
      await oldSuperuser.unsafe(`create role ${temporary.role} superuser login password ${literal(temporary.password)}`);
      renamed = true;
    }
  } catch (err) {
    // 28P01: no APP_ROLE with that password any more: renamed by an earlier start.
    if ((err as { code?: unknown }).code !== '28P01') throw err;
  } finally {
    await oldSuperuser.end();
  }
  if (renamed) {
    const helper = postgres(base(temporary.role, temporary.password), { max: 1, onnotice: () => {} });
    try {
      await helper.unsafe(`alter role ${APP_ROLE} rename to ${ADMIN_ROLE}`);
    } finally {
      await helper.end();
    }
    const admin = postgres(base(ADMIN_ROLE, old.password), { max: 1, onnotice: () => {} });
    try {
      await admin.unsafe(`drop role ${temporary.role}`);
    } finally {
      await admin.end();
    }
  }
  return { password: newPassword(), admin: { role: ADMIN_ROLE, password: old.password } };
}

/**
 * As the superuser: APP_ROLE exists, logs in with `password` and is no superuser, may
 * read the server's settings (the migrations read shared_preload_libraries to choose the
 * storage mode), and owns `database`, where the extensions it cannot create itself are
 * created (hll; TimescaleDB when preloaded and the database is not in postgres mode).
 * Objects the old superuser owned there (a cluster made before v0.3) become APP_ROLE's.
 * Repeated at every start: each step does nothing when already done.
 */
export async function prepareDatabase(
  adminUrl: string,
  database: string,
  opts: {
    password?: string;
    timescaledb: boolean;
    citus?: boolean;
    /** Refuse a database another storage mode has (a managed cluster's, see refuseOtherMode). */
    citusOnly?: boolean;
  },
): Promise<void> {
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`
      do $$ begin
        if not exists (select 1 from pg_roles where rolname = '${APP_ROLE}') then create role ${APP_ROLE} login; end if;
      end $$;
      alter role ${APP_ROLE} with login nosuperuser nocreatedb nocreaterole noreplication nobypassrls
        ${opts.password ? `password ${literal(opts.password)}` : ''};
      grant pg_read_all_settings to ${APP_ROLE};
    `);
    const [row]: [{ exists: boolean }?] = await admin`
      select exists (select 1 from pg_database where datname = ${database}) as exists
    `;
    if (!row?.exists) await admin`create database ${admin(database)} owner ${admin(APP_ROLE)}`;
    else await admin`alter database ${admin(database)} owner to ${admin(APP_ROLE)}`;
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  const db = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    if (opts.citus) {
      if (opts.citusOnly) await refuseOtherMode(db);
      await db`create extension if not exists citus`;
    }
    // On a Citus node, hll is created by prepareCitusDatabase, once the workers are known.
    else await db`create extension if not exists hll`;
    if (opts.timescaledb && !opts.citus) {
      const [migrated]: [{ yes: boolean }?] = await db`select to_regclass('public.headcount_settings') is not null as yes`;
      const [settings]: [{ storage_mode: string }?] = migrated?.yes ? await db`select storage_mode from headcount_settings` : [];
      if (settings?.storage_mode !== 'postgres') await db`create extension if not exists timescaledb`;
    }
    await db.unsafe(handOverSql(APP_ROLE));
  } finally {
    await db.end();
  }
}

/**
 * A managed cluster's database the migrations gave another storage mode does not become
 * a Citus database by starting its cluster with Citus: that move is an operator's
 * procedure (docs/storage.md, "Moving a postgres-mode database onto Citus").
 */
async function refuseOtherMode(db: postgres.Sql): Promise<void> {
  const [migrated]: [{ yes: boolean }?] = await db`select to_regclass('public.headcount_settings') is not null as yes`;
  if (!migrated?.yes) return;
  const [settings]: [{ storage_mode: string }?] = await db`select storage_mode from headcount_settings`;
  if (settings && settings.storage_mode !== 'citus') {
    throw new LocalClusterError(
      `the database ${await currentDatabase(db)} is in ${settings.storage_mode} storage mode: a local Citus cluster needs a data folder of its own (LOCAL_PG_DATA_DIR)`,
    );
  }
}

const currentDatabase = async (db: postgres.Sql): Promise<string> =>
  ((await db`select current_database() as name`)[0] as { name: string }).name;

/**
 * Makes `role` the owner of what the bootstrap superuser (oid 10) owns in the current
 * database outside the system schemas and the extensions: a database of a cluster made
 * before v0.3: tables and their partitions one by one (a partition does not follow its
 * parent); sequences of identity or serial columns, and TimescaleDB's chunks and
 * continuous-aggregate internals, follow their table or view.
 */
function handOverSql(role: string): string {
  return `
    do $$
    declare
      r record;
    begin
      for r in
        select format('alter %s %s owner to ${role}',
                 case c.relkind when 'v' then 'view' when 'm' then 'materialized view' when 'S' then 'sequence'
                               when 'f' then 'foreign table' else 'table' end,
                 c.oid::regclass) as stmt,
               format('alter materialized view %s owner to ${role}', c.oid::regclass) as as_aggregate
        from pg_class c
        join pg_namespace n on n.oid = c.relnamespace
        where c.relowner = 10
          and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
          and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
          and n.nspname not like '\\_timescaledb%' and n.nspname <> 'timescaledb_information'
          and n.nspname <> 'timescaledb_experimental'
          and not exists (select 1 from pg_depend d
                          where d.classid = 'pg_class'::regclass and d.objid = c.oid
                            and (d.deptype = 'e' or (c.relkind = 'S' and d.deptype in ('a', 'i'))))
        order by c.relkind = 'v' -- tables (hypertables) first: TimescaleDB carries their chunks along
      loop
        begin
          execute r.stmt;
        exception when others then
          -- A TimescaleDB continuous aggregate is a view that only ALTER MATERIALIZED VIEW
          -- may change ("cannot alter continuous aggregate using ALTER VIEW").
          execute r.as_aggregate;
        end;
      end loop;
      for r in
        select format('alter routine %s owner to ${role}', p.oid::regprocedure) as stmt
        from pg_proc p join pg_namespace n on n.oid = p.pronamespace
        where p.proowner = 10 and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg\\_%'
          and n.nspname not like '\\_timescaledb%' and n.nspname not like 'timescaledb\\_%'
          and not exists (select 1 from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      loop
        execute r.stmt;
      end loop;
      for r in
        select format('alter schema %I owner to ${role}', n.nspname) as stmt
        from pg_namespace n
        where n.nspowner = 10 and n.nspname not in ('pg_catalog', 'information_schema', 'public') and n.nspname not like 'pg\\_%'
          and not exists (select 1 from pg_depend d where d.classid = 'pg_namespace'::regclass and d.objid = n.oid and d.deptype = 'e')
      loop
        execute r.stmt;
      end loop;
    end $$;
  `;
}

/** Creates (once) and starts a cluster in `dataDir`; reuses it when it is already running. */
export async function startLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  const { dataDir, port, log } = opts;
  const pg = await ensurePostgres(opts.binDir, log);
  if (opts.citus && !pg.citus) {
    throw new LocalClusterError(
      `Citus is not installed in ${pg.libDir}: run npm run setup:citus as root (it builds Citus from ../shared/vendor/citus-*.tar.gz)`,
    );
  }
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await initCluster(pg, dataDir, log, opts.credentialsOf ? await readCredentials(opts.credentialsOf) : undefined);
  }
  let creds = await readCredentials(dataDir);

  // Unix-domain sockets cost far less per round trip than loopback TCP; their path
  // (dir + /.s.PGSQL.<port>) must fit in 107 bytes, and a folder name with a space or a
  // comma would need list quoting in unix_socket_directories: TCP then.
  const socketUsable = dataDir.length < 90 && !/[\s,"'\\]/.test(dataDir);
  let startedHere = false;
  let listenPort = port;
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    // The socket lives in the data folder: no system folder to own, no clash between clusters.
    unix_socket_directories: socketUsable ? dataDir : '',
    ...(opts.citus
      ? { shared_preload_libraries: 'citus', ...CITUS_SETTINGS }
      : pg.timescaledb
        ? { shared_preload_libraries: 'timescaledb', 'timescaledb.telemetry_level': 'off', ...opts.timescaledbSettings }
        : {}),
    ...opts.settings,
  };
  // pg_ctl hands -o to the server through a shell: every value goes single-quoted.
  const serverArgs = Object.entries(settings)
    .map(([k, v]) => `-c ${k}='${v.replaceAll("'", "'\\''")}'`)
    .join(' ');
  const pgCtlStart = async (): Promise<void> => {
    await run(
      path.join(pg.binDir, 'pg_ctl'),
      ['start', '-D', dataDir, '-w', '-t', '120', '-l', path.join(dataDir, 'server.log'), '-o', serverArgs],
      { asPostgres: true },
    ).catch(async (err: unknown) => {
      const tail = await fs.readFile(path.join(dataDir, 'server.log'), 'utf8').catch(() => '');
      throw new LocalClusterError(`${(err as Error).message}\n${tail.split('\n').slice(-15).join('\n')}`);
    });
  };
  if (await isRunning(pg, dataDir)) {
    // Its 4th line is the port the running server listens on, whatever we were asked for.
    const pid = await fs.readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
    listenPort = Number(pid.split('\n')[3]) || port;
    log.info({ dataDir, port: listenPort }, 'local PostgreSQL cluster already running');
  } else {
    log.info(
      { dataDir, port, timescaledb: pg.timescaledb && !opts.citus, citus: !!opts.citus },
      'starting local PostgreSQL cluster',
    );
    await pgCtlStart();
    startedHere = true;
  }
  const base = (role: string, password: string): string =>
    `postgres://${role}:${encodeURIComponent(password)}@127.0.0.1:${listenPort}/postgres`;
  if (!creds.admin) {
    creds = await separateRoles(base, creds, log);
    await writeCredentials(dataDir, creds);
  }
  const admin = creds.admin!;
  const adminUrl = base(admin.role, admin.password);
  await prepareDatabase(adminUrl, DATABASE, {
    password: creds.password,
    timescaledb: pg.timescaledb,
    citus: opts.citus,
    citusOnly: opts.citus,
  });
  const urlOf = (database: string): string =>
    `postgres://${APP_ROLE}:${encodeURIComponent(creds.password)}@127.0.0.1:${listenPort}/${database}` +
    (socketUsable ? `?host=${encodeURIComponent(dataDir)}` : '');

  return {
    url: urlOf(DATABASE),
    adminUrl,
    urlOf,
    dataDir,
    port: listenPort,
    timescaledb: pg.timescaledb && !opts.citus,
    citus: !!opts.citus,
    async crash() {
      await run(path.join(pg.binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w'], { asPostgres: true });
    },
    restart: pgCtlStart,
    async stop() {
      if (startedHere) {
        await run(path.join(pg.binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'fast', '-w'], { asPostgres: true });
      }
      if (opts.throwaway) {
        await fs.rm(dataDir, { recursive: true, force: true });
        await fs.rm(credentialsFile(dataDir), { force: true });
      }
    },
  };
}

/** Stops (immediately) whatever server runs in `dataDir` and removes the cluster's files. */
export async function discardCluster(binDir: string, dataDir: string): Promise<void> {
  if (existsSync(path.join(dataDir, 'postmaster.pid'))) {
    await run(path.join(binDir, 'pg_ctl'), ['stop', '-D', dataDir, '-m', 'immediate', '-w'], { asPostgres: true }).catch(
      () => undefined,
    );
  }
  await fs.rm(dataDir, { recursive: true, force: true });
  await fs.rm(credentialsFile(dataDir), { force: true });
}

/**
 * Server settings of every node of a local Citus cluster. A coordinator session keeps up
 * to this many connections to each worker open between transactions (Citus' default is
 * 1): a batch over many sites spreads over many shards, and with one cached connection
 * each transaction opened (TLS) connections again. A trial on this machine: a 50-site
 * batch took 558-711 ms with 1, 78-82 ms with 32 (note6-21). Workers then see up to
 * (coordinator sessions x this) connections: max_connections is raised to match, and
 * citus.max_shared_pool_size caps what the coordinator opens to one worker in all. The
 * service's writing sessions set it for themselves on any cluster (db/citus-sessions.ts);
 * this is for the others (its reads, psql).
 */
export const CITUS_SETTINGS: Record<string, string> = {
  'citus.max_cached_conns_per_worker': '32',
  'citus.max_shared_pool_size': '250',
  max_connections: '300',
  // Partitions x shards become tables on the workers: 8 shards of 65 day partitions of
  // events are 520 of them. Eight let two to eight workers share the sites.
  'citus.shard_count': '8',
  // Without it, Citus phones home (version checks and statistics) once a day.
  'citus.enable_statistics_collection': 'off',
  // A rebalance moves shards by logical replication while writes go on (force_logical,
  // docs/operations.md); changing it later needs a restart.
  wal_level: 'logical',
};

export interface LocalCitusCluster extends LocalCluster {
  /** The workers, each a cluster of its own (ports and data folders of their own). */
  readonly workers: readonly LocalCluster[];
  /**
   * Makes `database` a Citus database on every node (the coordinator's metadata lists
   * every worker) and owned by the application role; returns its URL as that role. The
   * service's database is made so at start; the test suite makes one per test file.
   */
  prepare(database: string): Promise<string>;
  /** Drops `database` on every node. */
  drop(database: string): Promise<void>;
  /** What prepareCitusDatabase needs (the test suite's setup hands it to its workers). */
  readonly nodes: CitusNodes;
  /**
   * Starts one more worker (data folder `<coordinator>-worker-<n>`, a free port) and makes
   * the service's database ready on it (prepareCitusWorker), without adding it to the
   * coordinator's metadata: that is the operator's `citus_add_node` (docs/operations.md,
   * "Running on Citus"). From then on it is one of `workers` (prepare, drop, stop).
   */
  addWorker(): Promise<LocalCluster>;
}

const citusNodes = async (coordinator: LocalCluster, workers: readonly LocalCluster[]): Promise<CitusNodes> => ({
  coordinator: { adminUrl: coordinator.adminUrl, port: coordinator.port },
  workers: workers.map((w) => ({ adminUrl: w.adminUrl, port: w.port })),
  appPassword: (await readCredentials(coordinator.dataDir)).password,
});

export interface LocalCitusClusterOptions extends Omit<LocalClusterOptions, 'citus' | 'credentialsOf'> {
  workers: number;
  /**
   * Ports of the workers; default the coordinator's port + 1, + 2, ... `free`: a free
   * port each, taken just before it starts, and another if it was taken meanwhile (the
   * test suite's and the bench's clusters, beside others on the machine).
   */
  workerPorts?: number[] | 'free';
}

/** The data folder of worker `n` (1-based) of the coordinator in `dataDir`. */
export const workerDataDir = (dataDir: string, n: number): string => `${dataDir.replace(/\/+$/, '')}-worker-${n}`;

/**
 * A coordinator (in `dataDir`, on `port`) and `workers` workers, each a local cluster
 * with Citus preloaded, on this machine. Citus connects from the coordinator to the
 * workers (and a worker to the others) as the user of the session that needs them: the
 * service's role for its queries, the superuser for setting up. Every node keeps password
 * authentication (scram) for everyone; the nodes share the roles' passwords (one
 * credentials file, copied when a worker is created), and each database's
 * pg_dist_authinfo, Citus' own catalog that only a superuser reads, hands each role's
 * password to the connections Citus opens. So no node trusts loopback (any local user
 * could then be anyone), and no .pgpass is written into the postgres system user's home
 * (shared with every other cluster of the machine).
 */
export async function startLocalCitusCluster(opts: LocalCitusClusterOptions): Promise<LocalCitusCluster> {
  const { workers: count, workerPorts, ...nodeOpts } = opts;
  if (count < 1) throw new LocalClusterError('a local Citus cluster needs at least one worker');
  const coordinator = await startLocalCluster({ ...nodeOpts, citus: true });
  const workers: LocalCluster[] = [];
  const startWorker = async (n: number, fixedPort?: number): Promise<LocalCluster> => {
    const start = async (port: number) =>
      startLocalCluster({
        ...nodeOpts,
        dataDir: workerDataDir(opts.dataDir, n),
        port,
        citus: true,
        credentialsOf: opts.dataDir,
      });
    if (fixedPort !== undefined) return start(fixedPort);
    for (let attempt = 1; ; attempt++) {
      try {
        return await start(await freePort());
      } catch (err) {
        // Its server log's words: "could not bind ... Address already in use".
        if (attempt >= 3 || !/Address already in use/.test((err as Error).message)) throw err;
      }
    }
  };
  try {
    for (let n = 1; n <= count; n++) {
      workers.push(await startWorker(n, workerPorts === 'free' ? undefined : (workerPorts?.[n - 1] ?? opts.port + n)));
    }
    await prepareCitusDatabase(await citusNodes(coordinator, workers), DATABASE);
  } catch (err) {
    for (const node of [...workers, coordinator].reverse()) await node.stop().catch(() => undefined);
    // A worker that failed to start is in no list: its folder goes too.
    if (opts.throwaway) {
      const pg = await findPostgres(opts.binDir);
      for (let n = 1; n <= count; n++) await discardCluster(pg.binDir, workerDataDir(opts.dataDir, n));
    }
    throw err;
  }
  const nodes = await citusNodes(coordinator, workers);
  return {
    ...coordinator,
    workers,
    nodes,
    async prepare(database) {
      await prepareCitusDatabase(nodes, database);
      return coordinator.urlOf(database);
    },
    async drop(database) {
      for (const node of [coordinator, ...workers]) {
        const admin = postgres(node.adminUrl, { max: 1, onnotice: () => {} });
        try {
          await admin`drop database if exists ${admin(database)} with (force)`;
        } finally {
          await admin.end();
        }
      }
    },
    async crash() {
      for (const node of [coordinator, ...workers]) await node.crash();
    },
    async restart() {
      for (const node of [...workers, coordinator]) await node.restart();
    },
    async stop() {
      for (const node of [coordinator, ...workers]) await node.stop();
    },
    async addWorker() {
      const worker = await startWorker(workers.length + 1);
      workers.push(worker);
      const node = { adminUrl: worker.adminUrl, port: worker.port };
      nodes.workers.push(node);
      await prepareCitusWorker(nodes, node, DATABASE);
      return worker;
    },
  };
}

/**
 * A local Citus cluster in a temporary folder (named `prefix`...), on free ports, whose
 * stop() removes it all: a test's or a bench's cluster of its own, beside the suite's.
 */
export async function startThrowawayCitusCluster(opts: {
  prefix: string;
  workers: number;
  log: Logger;
  settings?: Record<string, string>;
}): Promise<LocalCitusCluster> {
  const parent = await fs.mkdtemp(path.join(os.tmpdir(), opts.prefix));
  // The postgres system user runs the servers, in folders below this one.
  await fs.chmod(parent, 0o755);
  try {
    const cluster = await startLocalCitusCluster({
      dataDir: path.join(parent, 'coordinator'),
      port: await freePort(),
      workerPorts: 'free',
      workers: opts.workers,
      log: opts.log,
      settings: opts.settings,
      throwaway: true,
    });
    return {
      ...cluster,
      async stop() {
        await cluster.stop();
        await fs.rm(parent, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await fs.rm(parent, { recursive: true, force: true });
    throw err;
  }
}

/** A node of a Citus cluster, as its superuser reaches it. */
export interface CitusNode {
  adminUrl: string;
  port: number;
}

/** What it takes to make a database a Citus database on every node of a local cluster. */
export interface CitusNodes {
  coordinator: CitusNode;
  workers: CitusNode[];
  /** The application role's password (the same on every node). */
  appPassword: string;
}

/**
 * Makes `database` a Citus database on every node, owned by the application role: with
 * citus and hll; in the coordinator's metadata the coordinator itself (reference tables
 * get a copy there, which joins with its local tables need) and every worker; in each
 * node's pg_dist_authinfo each role's password (see startLocalCitusCluster). Each step
 * does nothing when done.
 */
export async function prepareCitusDatabase(nodes: CitusNodes, database: string): Promise<void> {
  await prepareDatabase(nodes.coordinator.adminUrl, database, { password: nodes.appPassword, timescaledb: false, citus: true });
  for (const worker of nodes.workers) await prepareCitusWorker(nodes, worker, database);
  await onDatabase(nodes.coordinator, database, async (db) => {
    await authinfo(nodes, db);
    await db`select citus_set_coordinator_host('127.0.0.1', ${nodes.coordinator.port})`;
    for (const worker of nodes.workers) {
      const [known]: [{ yes: boolean }?] = await db`
        select exists (select from pg_dist_node where nodename = '127.0.0.1' and nodeport = ${worker.port}) as yes
      `;
      if (!known?.yes) await db`select citus_add_node('127.0.0.1', ${worker.port})`;
    }
    // On the coordinator once the workers are known, as the superuser: Citus creates it on
    // each worker (and on workers added later) and records it as distributed. Created on
    // each node beforehand, it is not recorded, and the migrations' own `create extension
    // if not exists hll`, as the application role, would have Citus record it on the
    // workers, which refuse that role ("must be owner of extension hll").
    await db`create extension if not exists hll`;
    // Citus revokes it from PUBLIC; the writer recovers a commit a worker missed with it
    // (src/db/citus-commits.ts).
    await db`grant execute on function recover_prepared_transactions() to ${db(APP_ROLE)}`;
  });
}

/**
 * Makes `database` ready on the worker `node` before the coordinator lists it
 * (citus_add_node): created, owned by the application role, with citus, and each role's
 * password in its pg_dist_authinfo (see startLocalCitusCluster), which Citus' metadata
 * sync does not carry to a node. hll comes from the coordinator once the node is added.
 */
export async function prepareCitusWorker(nodes: CitusNodes, node: CitusNode, database: string): Promise<void> {
  await prepareDatabase(node.adminUrl, database, { password: nodes.appPassword, timescaledb: false, citus: true });
  await onDatabase(node, database, (db) => authinfo(nodes, db));
}

async function onDatabase(node: CitusNode, database: string, fn: (db: postgres.Sql) => Promise<void>): Promise<void> {
  const url = new URL(node.adminUrl);
  url.pathname = `/${database}`;
  const db = postgres(url.toString(), { max: 1, onnotice: () => {} });
  try {
    await fn(db);
  } finally {
    await db.end();
  }
}

/** Each role's password (the application's and the superuser's) for the connections Citus opens. */
async function authinfo(nodes: CitusNodes, db: postgres.Sql): Promise<void> {
  const admin = new URL(nodes.coordinator.adminUrl);
  const passwords: [string, string][] = [
    [APP_ROLE, nodes.appPassword],
    [decodeURIComponent(admin.username), decodeURIComponent(admin.password)],
  ];
  for (const [role, password] of passwords) {
    // nodeid 0: any node, this one included (Citus falls back to it for every node).
    await db`delete from pg_dist_authinfo where nodeid = 0 and rolename = ${role}`;
    await db`insert into pg_dist_authinfo (nodeid, rolename, authinfo) values (0, ${role}, ${`password=${literal(password)}`})`;
  }
}

/**
 * The cluster `npm start`, `npm run migrate`, `keys` and `psql` manage when DATABASE_URL
 * is unset: one PostgreSQL, or a Citus cluster of `citusWorkers` workers.
 */
export function startManagedCluster(
  local: { dataDir: string; port: number; binDir: string | undefined; citusWorkers: number },
  log: Logger,
): Promise<LocalCluster> {
  const { citusWorkers, ...opts } = local;
  return citusWorkers > 0 ? startLocalCitusCluster({ ...opts, workers: citusWorkers, log }) : startLocalCluster({ ...opts, log });
}
