import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Visits: a visitor's (site, user_id) events with gaps under headcount_settings.visit_gap
 * (30 minutes). headcount_visits holds one row per visit, kept in the inserting
 * transaction by the statement trigger events_visits (sql/common/headcount_track_visits):
 * a late or back-dated event extends a visit or merges two. docs/storage.md, "Visits",
 * says why and what a read counts.
 *
 * The entry columns are those of the visit's first event in the order (time, page, kind,
 * then the dimensions), exit_page the page of its last: merges keep them exact.
 * Events stored before this migration are made into visits here, under a SHARE lock on
 * events, so that no insert falls between this and the trigger (sql/ creates it next).
 */

const ENTRY_DIMENSIONS = ['referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term', 'country', 'device', 'browser', 'os'];

export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    lock table events in share mode;

    alter table headcount_settings add column visit_gap interval not null default interval '30 minutes'
      check (visit_gap > interval '0');
    comment on column headcount_settings.visit_gap is 'a visit is a visitor''s events with gaps under this';

    create table headcount_visits (
      site text not null,
      user_id text not null,
      started timestamptz not null,
      ended timestamptz not null,
      pageviews bigint not null,
      others bigint not null,
      entry_page text,
      entry_kind text not null,
      exit_page text,
      ${ENTRY_DIMENSIONS.map((d) => `${d} text`).join(',\n      ')}
    );
    create index headcount_visits_user_idx on headcount_visits (site, user_id, ended);
    create index headcount_visits_started_idx on headcount_visits (site, started);
    comment on table headcount_visits is 'headcount: one row per visit (a user''s events with gaps under visit_gap), kept by the trigger events_visits';

    insert into headcount_visits
    select site, user_id, min(time), max(time),
           coalesce(sum(weight) filter (where kind = 'pageview'), 0), coalesce(sum(weight) filter (where kind <> 'pageview'), 0),
           (array_agg(page order by time, page collate "C", kind collate "C"))[1],
           (array_agg(kind order by time, page collate "C", kind collate "C"))[1],
           (array_agg(page order by time desc, page collate "C" desc, kind collate "C" desc))[1],
           ${ENTRY_DIMENSIONS.map((d) => `(array_agg(${d} order by time, page collate "C", kind collate "C", ${ENTRY_DIMENSIONS.map((x) => `${x} collate "C"`).join(', ')}))[1]`).join(',\n           ')}
    from (
      select e.*, sum(brk) over (partition by site, user_id order by time rows unbounded preceding) as visit
      from (
        select e.*,
               case when time - lag(time) over (partition by site, user_id order by time) < interval '30 minutes' then 0 else 1 end as brk
        from events e
        where user_id is not null
      ) e
    ) e
    group by site, user_id, visit;
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    drop table headcount_visits;
    alter table headcount_settings drop column visit_gap;
  `);
}
