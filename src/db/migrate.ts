import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type { StorageModeSetting } from '../config.js';
import type { Logger } from '../log.js';
import { createSql, type Sql } from './client.js';
import { applySqlObjects, dropSqlObjects } from './sql-objects.js';

/** `migrations/` of the project, whether this file runs from src/ or from dist/. */
export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');

/** The migrations this build ships, as node-pg-migrate names them (file name without extension). */
export function shippedMigrations(): string[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /\.(ts|js|sql)$/.test(f) && !f.endsWith('.d.ts'))
    .map((f) => path.basename(f, path.extname(f)));
}

/** What migration 1796832000000_citus does for each STORAGE_MODE: see there. */
const CITUS_WANTED: Record<StorageModeSetting, 'required' | 'auto' | 'off'> = {
  citus: 'required',
  auto: 'auto',
  postgres: 'off',
  timescaledb: 'off',
};

export interface MigrateOptions {
  databaseUrl: string;
  storageMode: StorageModeSetting;
  /** The site given to events stored before sites existed (DEFAULT_SITE). */
  defaultSite?: string;
  direction?: 'up' | 'down';
  /** How many migrations; default all for up, one for down. */
  count?: number;
  log: Logger;
  /** Where the functions, views and triggers are (tests apply other versions of them); default sql/. */
  sqlDir?: string;
}

/**
 * v0.1.0's migration reads current_setting('shared_preload_libraries'), which only a
 * superuser or a member of pg_read_all_settings may: managed PostgreSQL services give
 * neither to the database's owner. For such a role, a function of that name in a schema
 * of ours, searched before pg_catalog, answers '' for it instead (TimescaleDB then
 * counts as not preloaded: postgres mode). A shipped migration is never edited, so the
 * fix lives here. Returns the search_path to migrate with, if one is needed.
 */
async function settingsShim(databaseUrl: string): Promise<string | undefined> {
  const sql = createSql(databaseUrl, { max: 1, applicationName: 'headcount-migrate' });
  try {
    const [row]: [{ readable: boolean }?] = await sql`
      select pg_has_role(current_user, 'pg_read_all_settings', 'member')
        or (select rolsuper from pg_roles where rolname = current_user) as readable
    `;
    if (row?.readable) return undefined;
    await sql.unsafe(`
      create schema if not exists headcount_compat;
      create or replace function headcount_compat.current_setting(name text) returns text
      language sql stable as $$
        select case when name = 'shared_preload_libraries' then '' else pg_catalog.current_setting(name) end
      $$;
    `);
    return 'public,headcount_compat,pg_catalog';
  } finally {
    await sql.end();
  }
}

export interface ServiceSession {
  application_name: string;
  client_addr: string | null;
  backend_start: Date;
}

/**
 * Sessions of a running service on the database: its pool (application_name
 * `headcount`) and its refresher (`headcount-refresher`), seen in pg_stat_activity by
 * any role (a role that is not theirs sees them too, without their queries). A service
 * whose pool has sat idle for a minute has closed its connections (postgres mode has no
 * refresher): it is not seen.
 */
export const serviceSessions = (databaseUrl: string): Promise<ServiceSession[]> =>
  withConnection(
    databaseUrl,
    (sql) => sql<ServiceSession[]>`
      select application_name, host(client_addr) as client_addr, backend_start /* migrate */
      from pg_stat_activity
      where datname = current_database()
        and pid <> pg_backend_pid()
        and application_name in ('headcount', 'headcount-refresher')
      order by backend_start
    `,
  );

/** `fn` on a connection of its own (the migration's, by name), closed after. */
async function withConnection<T>(databaseUrl: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = createSql(databaseUrl, { max: 1, applicationName: 'headcount-migrate' });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/**
 * Up: the numbered migrations (tables and data), then the functions, views and triggers
 * of sql/ that changed. Down: those objects dropped first, then the down steps; the next
 * up applies them again. Returns the numbered migrations that ran.
 */
export async function migrate(opts: MigrateOptions): Promise<string[]> {
  const direction = opts.direction ?? 'up';
  if (direction === 'down') await withConnection(opts.databaseUrl, dropSqlObjects);
  const searchPath = await settingsShim(opts.databaseUrl);
  const ran = await runner({
    // Settings reach the migrations as session settings they read with current_setting:
    // headcount.storage_mode, headcount.citus, headcount.default_site (validated by the
    // config). Citus mode is postgres mode's schema, distributed by a later migration
    // (1796832000000_citus): the migrations before it make postgres mode's.
    databaseUrl: {
      connectionString: opts.databaseUrl,
      options:
        `-c headcount.storage_mode=${opts.storageMode === 'citus' ? 'postgres' : opts.storageMode}` +
        ` -c headcount.citus=${CITUS_WANTED[opts.storageMode]}` +
        // On a Citus coordinator, v0.1.0's `create extension if not exists hll` would have
        // Citus record hll as distributed on the workers, as this role, which they refuse
        // ("must be owner of extension hll": the superuser made it, see
        // prepareCitusDatabase). Deferred, what the migrations' transaction creates is
        // passed on to the workers only when a distributed object needs it. (Elsewhere an
        // unknown citus.* setting is a harmless placeholder.)
        (CITUS_WANTED[opts.storageMode] === 'off' ? '' : ' -c citus.create_object_propagation=deferred') +
        ` -c headcount.default_site=${opts.defaultSite ?? 'default'}` +
        (searchPath ? ` -c search_path=${searchPath}` : ''),
    },
    dir: MIGRATIONS_DIR,
    migrationsTable: 'pgmigrations',
    direction,
    count: opts.count ?? (direction === 'up' ? Infinity : 1),
    checkOrder: true,
    singleTransaction: true,
    // Several instances may start at once: the later ones wait, then find nothing to do.
    advisoryLockMode: 'wait',
    logger: {
      debug: (msg: string) => opts.log.debug(msg),
      info: (msg: string) => opts.log.debug(msg),
      warn: (msg: string) => opts.log.warn(msg),
      error: (msg: string) => opts.log.error(msg),
    },
  });
  const names = ran.map((m) => m.name);
  if (names.length > 0) opts.log.info({ migrations: names }, `migrated ${direction}`);
  if (direction === 'up') {
    // sql/ is written against the schema of the last migration: while one is pending (up
    // N), the objects stay as they are.
    const applied = await withConnection(opts.databaseUrl, async (sql) => {
      const done = (await sql<{ name: string }[]>`select name from pgmigrations`).map((r) => r.name);
      const pending = shippedMigrations().filter((name) => !done.includes(name));
      if (pending.length === 0) return applySqlObjects(sql, opts.sqlDir);
      opts.log.info({ pending }, 'the functions, views and triggers of sql/ wait for the pending migrations');
      return [];
    });
    if (applied.length > 0) opts.log.info({ objects: applied }, 'applied the functions, views and triggers of sql/');
  }
  return names;
}
