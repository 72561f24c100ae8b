import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Storage mode citus (issue 21): postgres mode's schema, distributed over a Citus cluster.
 * The migrations before this one made that schema on the coordinator as for one
 * PostgreSQL (storage_mode postgres); here, when asked, it becomes citus:
 *
 *  - events and every table kept per site (the aggregates, the dimension queue and
 *    rollups, quarter hours, visits) are distributed by site, co-located with events: a
 *    site's rows of every table are on one worker, so a site's statement runs there whole;
 *  - headcount_settings, headcount_api_keys, headcount_rollups and headcount_sites are
 *    reference tables (a copy on every node: any shard's statement can join them);
 *  - the rest stays on the coordinator alone (rate limits, tracker salts, the migrations'
 *    and sql/'s own bookkeeping): each is read by statements of its own.
 *
 * Citus refuses triggers on distributed tables: the triggers on these tables are dropped
 * first (sql/citus/ has none; the writer calls headcount_events_inserted itself).
 * create_distributed_table copies the rows a table holds to the workers: an existing
 * postgres-mode database moves onto Citus by this migration (docs/storage.md, "Citus").
 *
 * When: the session setting headcount.citus, from STORAGE_MODE by src/db/migrate.ts:
 * `required` (STORAGE_MODE=citus: an error where Citus is not in the database), `auto`
 * (STORAGE_MODE=auto: when the database has the citus extension), anything else never.
 */

/** Distributed by site, co-located with events, in this order. */
const PER_SITE = [
  'events',
  'events_minutely',
  'events_hourly',
  'events_daily',
  'totals_hourly',
  'totals_daily',
  'headcount_pending',
  'dimensions_hourly',
  'dimensions_daily',
  'dimensions_weekly',
  'headcount_rollup_days',
  'headcount_rollup_weeks',
  'kinds_15m',
  'headcount_visits',
];
const REFERENCE = ['headcount_settings', 'headcount_api_keys', 'headcount_rollups', 'headcount_sites'];

export async function up(pgm: MigrationBuilder): Promise<void> {
  const [row] = (await pgm.db.select(`
    select coalesce(nullif(current_setting('headcount.citus', true), ''), 'off') as wanted,
           exists (select from pg_extension where extname = 'citus') as citus,
           (select storage_mode from headcount_settings) as mode
  `)) as [{ wanted: string; citus: boolean; mode: string }];
  if (row.wanted === 'required' && !row.citus) {
    throw new Error('STORAGE_MODE=citus but the database has no citus extension: create extension citus (as a superuser) first');
  }
  if (row.wanted === 'required' && row.mode !== 'postgres') {
    throw new Error(`STORAGE_MODE=citus but this database is in ${row.mode} storage mode, which cannot be distributed`);
  }
  if (!(row.citus && row.mode === 'postgres' && (row.wanted === 'required' || row.wanted === 'auto'))) return;

  pgm.sql(`
    alter table headcount_settings drop constraint headcount_settings_storage_mode_check;
    alter table headcount_settings add constraint headcount_settings_storage_mode_check
      check (storage_mode in ('timescaledb', 'postgres', 'citus'));
    update headcount_settings set storage_mode = 'citus';

    -- Citus: "triggers are not supported on distributed tables".
    do $$
    declare
      t record;
    begin
      for t in
        select format('drop trigger %I on %s', tg.tgname, tg.tgrelid::regclass) as stmt
        from pg_trigger tg
        where not tg.tgisinternal and tg.tgparentid = 0
          and tg.tgrelid = any (array[${[...PER_SITE, ...REFERENCE].map((t) => `'${t}'::regclass`).join(', ')}])
      loop
        execute t.stmt;
      end loop;
    end $$;

    -- Each distribution in this transaction uses one connection per worker: a later
    -- statement of the transaction must see what an earlier one wrote over it.
    set local citus.multi_shard_modify_mode to 'sequential';
    ${REFERENCE.map((t) => `select create_reference_table('${t}');`).join('\n    ')}
    select create_distributed_table('events', 'site');
    ${PER_SITE.slice(1)
      .map((t) => `select create_distributed_table('${t}', 'site', colocate_with => 'events');`)
      .join('\n    ')}
  `);
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: string }];
  if (row.storage_mode !== 'citus') return;
  // Back to tables of the coordinator, rows and all; the next up of sql/ (postgres mode)
  // puts the triggers back.
  pgm.sql(`
    set local citus.multi_shard_modify_mode to 'sequential';
    ${[...PER_SITE]
      .reverse()
      .map((t) => `select undistribute_table('${t}');`)
      .join('\n    ')}
    ${REFERENCE.map((t) => `select undistribute_table('${t}');`).join('\n    ')}
    update headcount_settings set storage_mode = 'postgres';
    alter table headcount_settings drop constraint headcount_settings_storage_mode_check;
    alter table headcount_settings add constraint headcount_settings_storage_mode_check
      check (storage_mode in ('timescaledb', 'postgres'));
  `);
}
