import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * From here on, functions, views and triggers live outside the numbered migrations: each
 * has one file in sql/ with its current definition, which src/db/sql-objects.ts applies
 * after the numbered migrations whenever a file's content changes (README, "Migrations").
 * Numbered migrations keep tables and data; none from here on depends on those objects'
 * bodies. This one makes the two tables of that layer:
 *
 *   headcount_sql_objects   the objects the layer created, in order, with the SHA-256 of
 *                           each file as applied
 *   headcount_sql_baseline  the functions, views and triggers exactly as the migrations
 *                           before this one left them, read from the catalog here
 *
 * The baseline is for down(): the older migrations' down steps drop or alter those
 * objects by name and signature, whatever the layer has made of them since. So down()
 * puts them back as they were (src/db/migrate.ts has dropped the layer's objects before
 * any down step), and every older down step finds what it expects.
 */

/** Functions, views (not continuous aggregates) and triggers of public, none an extension's. */
const CAPTURE = `
  do $$
  declare
    caggs oid[] := '{}';
  begin
    if to_regclass('_timescaledb_catalog.continuous_agg') is not null then
      execute $q$
        select coalesce(array_agg(format('%I.%I', user_view_schema, user_view_name)::regclass::oid), '{}')
        from _timescaledb_catalog.continuous_agg
      $q$ into caggs;
    end if;
    insert into headcount_sql_baseline (position, name, ddl)
    select row_number() over (order by o.rank, o.oid), o.name, o.ddl
    from (
      select 1 as rank, p.oid, p.proname::text as name,
             pg_get_functiondef(p.oid) || ';' ||
               coalesce(format(e'\\ncomment on function %s is %L;', p.oid::regprocedure, obj_description(p.oid, 'pg_proc')), '') as ddl
      from pg_proc p
      where p.pronamespace = 'public'::regnamespace and p.prokind in ('f', 'p')
        and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      union all
      select 2, c.oid, c.relname::text,
             format('create view %I as %s', c.relname, pg_get_viewdef(c.oid)) ||
               coalesce(format(e'\\ncomment on view %I is %L;', c.relname, obj_description(c.oid, 'pg_class')), '')
      from pg_class c
      where c.relnamespace = 'public'::regnamespace and c.relkind = 'v' and c.oid <> all (caggs)
        and not exists (select from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
      union all
      select 3, t.oid, t.tgname::text, pg_get_triggerdef(t.oid) || ';'
      from pg_trigger t
      join pg_class c on c.oid = t.tgrelid
      where c.relnamespace = 'public'::regnamespace and not t.tgisinternal and t.tgparentid = 0
    ) o;
  end
  $$;
`;

export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    create table headcount_sql_objects (
      name text primary key,
      position integer not null unique,
      sha256 text not null,
      applied_at timestamptz not null default now()
    );
    comment on table headcount_sql_objects is 'headcount: the functions, views and triggers applied from sql/ (src/db/sql-objects.ts), in order, with the SHA-256 of each file';
    create table headcount_sql_baseline (
      position integer primary key,
      name text not null,
      ddl text not null
    );
    comment on table headcount_sql_baseline is 'headcount: the functions, views and triggers as the migrations before 1796054400000_sql_objects left them, put back by its down step';
    ${CAPTURE}
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    do $$
    declare
      b record;
      target text;
    begin
      -- Whatever still has a baseline object's name goes first (src/db/migrate.ts has
      -- dropped the layer's objects already; this covers any other runner).
      for b in select name from headcount_sql_baseline order by position desc loop
        for target in
          select format('drop trigger %I on %s', t.tgname, t.tgrelid::regclass)
          from pg_trigger t
          join pg_class c on c.oid = t.tgrelid
          where t.tgname = b.name and c.relnamespace = 'public'::regnamespace and not t.tgisinternal and t.tgparentid = 0
          union all
          select format('drop view %I', c.relname)
          from pg_class c
          where c.relname = b.name and c.relnamespace = 'public'::regnamespace and c.relkind = 'v'
          union all
          select format('drop function %s', p.oid::regprocedure)
          from pg_proc p
          where p.proname = b.name and p.pronamespace = 'public'::regnamespace
        loop
          execute target;
        end loop;
      end loop;
      for b in select ddl from headcount_sql_baseline order by position loop
        execute b.ddl;
      end loop;
    end
    $$;
    drop table headcount_sql_baseline;
    drop table headcount_sql_objects;
  `);
}
