import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type postgres from 'postgres';
import type { Sql } from './client.js';
import type { StorageMode } from './storage.js';

/*
 * Functions, views and triggers: one file each in sql/, holding the object's current
 * definition as plain SQL that psql can run (`\i sql/common/headcount_stats.sql`):
 *
 *   sql/common/<name>.sql        the same in both storage modes
 *   sql/<mode>/<name>.sql        where the modes differ (timescaledb, postgres)
 *
 * They are applied after the numbered migrations, as Flyway applies its repeatable
 * migrations: the database records the SHA-256 of every file it applied
 * (headcount_sql_objects); when any file differs, or an object was added or removed, the
 * layer drops every object it knows (last first) and creates them all again from the
 * files, in SQL_OBJECTS order, in one transaction. Recreating all of them, rather than
 * `create or replace` of the changed one, lets a change alter a signature or a view's
 * columns even when other objects depend on it, and leaves the catalog exactly as a fresh
 * database has it, whatever path a database took.
 *
 * Why repeatable objects rather than a pg-boss-like "plan" (one script for fresh
 * installs beside the upgrade steps): a plan holds the tables too, so every table change
 * is written twice (plan and step) and a test must prove they agree; here tables have one
 * history (the numbered migrations) and objects one definition (these files), and a fresh
 * database takes the same path as an upgraded one.
 *
 * Continuous aggregates (`*_cagg`) hold data: they stay in numbered migrations.
 */

/** sql/ of the project, whether this file runs from src/ or from dist/. */
export const SQL_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'sql');

/**
 * Every object of sql/, in the order they are created: what an object uses comes before
 * it (plpgsql bodies are bound at call time, but views and triggers need their relations
 * and functions). Dropped in the reverse order. An object absent from a mode has no file
 * for it.
 */
export const SQL_OBJECTS = [
  'headcount_sketch_parameters',
  'headcount_dimensions',
  'headcount_dimension_value',
  'headcount_rollup_hours_from',
  'headcount_zone',
  'headcount_use_zone',
  'headcount_day_start',
  'headcount_format_time',
  'headcount_stats_pieces',
  'headcount_check_stats_arguments',
  'headcount_check_bucket_count',
  'headcount_check_dimension',
  'headcount_parse_filters',
  'headcount_parse_group_by',
  'headcount_predicate',
  'headcount_check_snapshot',
  'headcount_stats',
  'headcount_visit_stats',
  'headcount_watermark',
  'headcount_apply_events',
  'headcount_reject_change',
  'headcount_maintain_partitions',
  'headcount_queue_dimensions',
  'headcount_track_visits',
  'headcount_track_visits_sites',
  'headcount_events_inserted',
  'headcount_fold_table',
  'headcount_fold_events',
  'headcount_fold_parts',
  'headcount_build_weeks',
  'headcount_roll_up_events',
  'headcount_roll_up_batch',
  'headcount_roll_up',
  'headcount_expire_dimensions',
  'headcount_analyze_new',
  'events_minutely',
  'events_hourly',
  'totals_hourly',
  'events_daily',
  'totals_daily',
  'users_daily',
  'events_inserted',
  'events_append_only',
] as const;

/**
 * Names sql/ no longer has, which migrations or earlier releases of the layer created:
 * dropped on every apply like the current ones, so that a database the layer first
 * reaches now (a release before it) keeps none of them beside their successors. The
 * triggers events_aggregate, events_dimensions and events_visits became events_inserted.
 */
const RETIRED_SQL_OBJECTS = ['events_aggregate', 'events_dimensions', 'events_visits'] as const;

/** Taken for the whole apply (or drop): instances starting at once apply the layer once. */
const SQL_OBJECTS_LOCK_KEY = 0x6865_6173; // "heas"

export interface SqlObject {
  name: string;
  /** Relative to the project, e.g. sql/common/headcount_stats.sql. */
  file: string;
  text: string;
  sha256: string;
}

/**
 * Where each mode's files are looked for, first found first: citus mode is postgres mode
 * but for what sql/citus/ holds (an object it has no use for is a file there that only
 * says why).
 */
const MODE_DIRS: Record<StorageMode, string[]> = {
  timescaledb: ['timescaledb', 'common'],
  postgres: ['postgres', 'common'],
  citus: ['citus', 'postgres', 'common'],
};

/** The objects of `mode`, in SQL_OBJECTS order. */
export async function readSqlObjects(mode: StorageMode, dir = SQL_DIR): Promise<SqlObject[]> {
  const objects: SqlObject[] = [];
  for (const name of SQL_OBJECTS) {
    const file = MODE_DIRS[mode].map((d) => path.join(dir, d, `${name}.sql`)).find((f) => existsSync(f));
    if (!file) continue;
    const text = await readFile(file, 'utf8');
    objects.push({
      name,
      file: path.join('sql', path.relative(dir, file)),
      text,
      sha256: createHash('sha256').update(text).digest('hex'),
    });
  }
  return objects;
}

type Tx = postgres.TransactionSql;

/** Whether the database has the layer's table, i.e. ran migration 1796054400000_sql_objects. */
async function layerInstalled(tx: Tx): Promise<boolean> {
  const [row]: [{ installed: boolean }?] = await tx`
    select to_regclass('headcount_sql_objects') is not null as installed /* db/sql-objects */
  `;
  return row?.installed ?? false;
}

/**
 * Drops the functions, views and triggers of public named `name` (none of an
 * extension's, no continuous aggregate: only plain views).
 */
async function dropNamed(tx: Tx, name: string): Promise<void> {
  const targets = await tx<{ target: string }[]>`
    select format('drop trigger %I on %s', t.tgname, t.tgrelid::regclass) as target
    from pg_trigger t
    join pg_class c on c.oid = t.tgrelid
    where t.tgname = ${name} and c.relnamespace = 'public'::regnamespace and not t.tgisinternal and t.tgparentid = 0
    union all
    select format('drop view %I', c.relname)
    from pg_class c
    where c.relname = ${name} and c.relnamespace = 'public'::regnamespace and c.relkind = 'v'
      and not exists (select from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
    union all
    select format('drop function %s', p.oid::regprocedure)
    from pg_proc p
    where p.proname = ${name} and p.pronamespace = 'public'::regnamespace
      and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
  `;
  for (const { target } of targets) await tx.unsafe(target);
}

/**
 * Drops what the layer applied, last first, then what else bears the name of one of
 * `also` (the objects the migrations before the layer created, on its first apply).
 */
async function dropApplied(tx: Tx, also: readonly string[]): Promise<void> {
  const applied = (await tx<{ name: string }[]>`select name from headcount_sql_objects order by position desc`).map(
    (r) => r.name,
  );
  for (const name of [...applied, ...[...also].reverse().filter((n) => !applied.includes(n))]) await dropNamed(tx, name);
  await tx`delete from headcount_sql_objects`;
}

/**
 * Brings the objects of sql/ up to date: nothing when every applied file is unchanged,
 * else all of them dropped and created again. Returns the files applied. Does nothing
 * before migration 1796054400000_sql_objects has run.
 */
export async function applySqlObjects(sql: Sql, dir = SQL_DIR): Promise<string[]> {
  return sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${SQL_OBJECTS_LOCK_KEY})`;
    if (!(await layerInstalled(tx))) return [];
    const [settings]: [{ storage_mode: StorageMode }?] = await tx`select storage_mode from headcount_settings`;
    if (!settings) throw new Error('headcount_settings has no row: the database was not migrated by headcount');
    const objects = await readSqlObjects(settings.storage_mode, dir);
    const applied = await tx<{ name: string; sha256: string }[]>`
      select name, sha256 from headcount_sql_objects order by position
    `;
    const same =
      applied.length === objects.length && applied.every((a, i) => a.name === objects[i]?.name && a.sha256 === objects[i].sha256);
    if (same) return [];
    await dropApplied(tx, [...SQL_OBJECTS, ...RETIRED_SQL_OBJECTS]);
    for (const [position, o] of objects.entries()) {
      try {
        await tx.unsafe(o.text);
      } catch (err) {
        throw new Error(`${o.file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      await tx`insert into headcount_sql_objects (name, position, sha256) values (${o.name}, ${position}, ${o.sha256})`;
    }
    return objects.map((o) => o.file);
  });
}

/**
 * Before any down step: drops every object the layer applied, so that the older
 * migrations' down steps find tables free of them (and, below the layer's migration, the
 * objects they made, which its down step puts back). The next `up`, of whichever release,
 * applies its own sql/ again.
 */
export async function dropSqlObjects(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`select pg_advisory_xact_lock(${SQL_OBJECTS_LOCK_KEY})`;
    if (await layerInstalled(tx)) await dropApplied(tx, []);
  });
}
