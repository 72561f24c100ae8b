import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Quarter hours: per site, UTC quarter hour and kind, the event count and an hll sketch
 * of the users, for the ends of the local hours and days of zones whose offset is not a
 * whole number of hours (Asia/Kolkata +05:30, Asia/Kathmandu +05:45: every zone's offset
 * is a multiple of 15 minutes). Those ends lie inside UTC hours and were read from
 * events_minutely (a row per minute, kind and page) or raw events: 48 hours of
 * Asia/Kolkata were all minutes. Tables and data only; what keeps and reads them is in
 * sql/ (headcount_roll_up, headcount_stats_pieces, headcount_stats).
 *
 *   kinds_15m (site, bucket, kind, events, users)   kept by the roller from the queue
 *                     (headcount_pending), as the dimension rollups are: a read adds
 *                     what is still queued; raw retention
 *   headcount_settings.quarters_from                the first instant from which
 *                     kinds_15m holds every event; reads use it from there on
 *
 * A database with events gets none of their quarters (the queue does not hold them, and
 * a quarter summed from events and from queued rows would count the latter twice): it
 * starts at a quarter after now, past the 5 minutes ahead that ingest accepts, so that
 * every event of a later quarter is queued after this commit. Earlier ones are read as
 * before, from minutes or raw events, until they pass the raw retention.
 */
export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    create table kinds_15m (
      site text not null,
      bucket timestamptz not null,
      kind text not null,
      events bigint not null,
      users hll not null,
      primary key (site, bucket, kind)
    );
    comment on table kinds_15m is 'headcount: per site, UTC quarter hour and kind, the event count and an hll sketch of the users (from headcount_settings.quarters_from; kept by the roller, read with the queued events)';

    alter table headcount_settings add column quarters_from timestamptz not null default '-infinity';
    comment on column headcount_settings.quarters_from is 'from when kinds_15m holds every event (-infinity: from the start)';
    update headcount_settings
    set quarters_from = date_bin('15 minutes', now() + interval '5 minutes', timestamptz 'epoch') + interval '15 minutes'
    where exists (select from events) or exists (select from headcount_pending);
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    alter table headcount_settings drop column quarters_from;
    drop table kinds_15m;
  `);
}
