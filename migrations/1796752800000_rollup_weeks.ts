import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Weeks: dimensions_weekly holds, per site, set of dimensions, UTC week (from Monday
 * 00:00) and values, the rows of every kind ('*') of that week's seven days in one. A
 * read over 30 days that neither filters nor groups by kind unions about 12 sketches per
 * value (3 or 4 weeks and the days around them) instead of 30: group_by=country over 30
 * days of 1,000,000 events a day was 1,800 sketches, about 50 ms of unions.
 *
 *   dimensions_weekly (site, dims, bucket, vals, events, users, part)   parts as in
 *                                         the other rollups (1796745600000_rollup_parts)
 *   headcount_rollup_weeks (site, week)   the weeks the roller has built for a site,
 *                                         every set of dimensions at once
 *
 * Tables only; what builds, keeps and reads them is in sql/ (headcount_build_weeks,
 * headcount_roll_up, headcount_stats). The roller builds an ended week from its day rows
 * and from then on adds the late events of that week to it; reads use a week only once
 * it is built and none of its days is answered from raw events. Nothing to backfill: the
 * roller builds the weeks already ended, one per pass, and until then reads use days.
 */
export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    create table dimensions_weekly (
      site text not null,
      dims text not null,
      bucket timestamptz not null,
      vals text[] not null,
      events bigint not null,
      users hll not null,
      part bigint not null default 0,
      primary key (site, dims, bucket, vals, part)
    );
    create index dimensions_weekly_parts on dimensions_weekly (part) where part <> 0;
    comment on table dimensions_weekly is 'headcount: per site, set of dimensions (dims), UTC week (Monday) and values, the event count and an hll sketch of the users of every kind (the week''s dimensions_daily rows of kind ''*'' in one); kept by the roller for the weeks of headcount_rollup_weeks; a key''s count is the union of its rows (part 0 and the parts not folded yet)';

    create table headcount_rollup_weeks (
      site text not null,
      week timestamptz not null,
      primary key (site, week)
    );
    comment on table headcount_rollup_weeks is 'headcount: the UTC weeks whose dimensions_weekly rows the roller has built for a site (then keeps with late events)';
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    drop table headcount_rollup_weeks;
    drop table dimensions_weekly;
  `);
}
