import type { Sql } from '../../src/db/client.js';

/**
 * The schema of a database as the catalog describes it, for comparing databases that
 * took different paths: every relation of public with its columns, defaults,
 * constraints, indexes and comments; every function (its source, settings and
 * comment), view definition and trigger; TimescaleDB's hypertables, continuous
 * aggregates and jobs; and what the SQL objects layer recorded. Left out, as they differ
 * between databases of the same schema: the day partitions of postgres mode (named by
 * the day they were made on) and the numbers TimescaleDB gives its internal
 * hypertables.
 */
export async function catalogOf(sql: Sql): Promise<Record<string, string[]>> {
  const rows = async (query: Promise<{ line: string }[]>) => (await query).map((r) => r.line);
  const ids = (text: string) =>
    text
      .replace(/_materialized_hypertable_\d+/g, '_materialized_hypertable_N')
      .replace(/cagg_watermark\(\d+\)/g, 'cagg_watermark(N)');
  const catalog: Record<string, string[]> = {
    relations: await rows(sql`
      select concat_ws(' ', c.relname, c.relkind, c.relpersistence, c.reloptions::text, obj_description(c.oid, 'pg_class')) as line
      from pg_class c
      where c.relnamespace = 'public'::regnamespace and c.relname !~ '^events_p[0-9]{8}'
      order by 1
    `),
    columns: await rows(sql`
      select concat_ws(' ', c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                       pg_get_expr(d.adbin, d.adrelid), col_description(c.oid, a.attnum)) as line
      from pg_attribute a
      join pg_class c on c.oid = a.attrelid
      left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
      where c.relnamespace = 'public'::regnamespace and c.relname !~ '^events_p[0-9]{8}' and a.attnum > 0 and not a.attisdropped
      order by 1
    `),
    constraints: await rows(sql`
      select concat_ws(' ', c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)) as line
      from pg_constraint c
      where c.connamespace = 'public'::regnamespace and c.conrelid::regclass::text !~ '^events_p[0-9]{8}'
      order by 1
    `),
    indexes: await rows(sql`
      select pg_get_indexdef(i.indexrelid) as line
      from pg_index i
      join pg_class c on c.oid = i.indrelid
      where c.relnamespace = 'public'::regnamespace and c.relname !~ '^events_p[0-9]{8}'
      order by 1
    `),
    functions: await rows(sql`
      select concat_ws(' ', p.oid::regprocedure::text, pg_get_function_result(p.oid), p.provolatile, p.proparallel,
                       p.proconfig::text, obj_description(p.oid, 'pg_proc'), p.prosrc) as line
      from pg_proc p
      where p.pronamespace = 'public'::regnamespace
        and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      order by 1
    `),
    views: (
      await rows(sql`
        select c.relname || ' ' || pg_get_viewdef(c.oid) as line
        from pg_class c
        where c.relnamespace = 'public'::regnamespace and c.relkind in ('v', 'm')
        order by 1
      `)
    ).map(ids),
    triggers: await rows(sql`
      select pg_get_triggerdef(t.oid) as line
      from pg_trigger t
      join pg_class c on c.oid = t.tgrelid
      where c.relnamespace = 'public'::regnamespace and not t.tgisinternal and c.relname !~ '^events_p[0-9]{8}'
      order by 1
    `),
    sqlObjects: await rows(sql`
      select concat_ws(' ', position, name, sha256) as line from headcount_sql_objects order by position
    `),
    sqlBaseline: await rows(
      sql`select concat_ws(' ', position, name, ddl) as line from headcount_sql_baseline order by position`,
    ),
  };
  const [timescaledb]: [{ installed: boolean }?] = await sql`
    select exists (select from pg_extension where extname = 'timescaledb') as installed
  `;
  if (timescaledb?.installed) {
    catalog.hypertables = await rows(sql`
      select concat_ws(' ', hypertable_name, column_name, time_interval::text) as line
      from timescaledb_information.dimensions
      where hypertable_schema = 'public'
      order by 1
    `);
    catalog.continuousAggregates = (
      await rows(sql`
        select concat_ws(' ', view_name, materialized_only, view_definition) as line
        from timescaledb_information.continuous_aggregates
        order by 1
      `)
    ).map(ids);
    catalog.jobs = await rows(sql`
      select concat_ws(' ', hypertable_name, proc_name, schedule_interval::text, config - 'hypertable_id' - 'mat_hypertable_id') as line
      from timescaledb_information.jobs
      where hypertable_schema = 'public'
      order by 1
    `);
  }
  return catalog;
}
