import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Days are UTC days whatever the session's TimeZone. timestamptz + interval '1 day'
 * follows the session's zone: a psql user in a zone with DST saw 23- or 25-hour days.
 * timescaledb mode: the day views answer a stale day from the 24 hours that follow its
 * UTC midnight. postgres mode: partition maintenance computes its day partitions in UTC.
 */
type Mode = 'timescaledb' | 'postgres';

async function readMode(pgm: MigrationBuilder): Promise<Mode> {
  const [row] = (await pgm.db.select(`select storage_mode from headcount_settings`)) as [{ storage_mode: Mode }];
  return row.storage_mode;
}

const MAINTAIN = 'headcount_maintain_partitions(timestamptz, integer, interval)';

/** A day view of 1795449600000_sites_and_fresh_reads, its stale days `width` long. */
function dayView(name: string, aggregate: string, finer: string, perKey: boolean, width: string): string {
  return `
    create or replace view ${name} as
    select a.*
    from ${aggregate} a
    where not exists (select from headcount_stale_hours s where s.site = a.site and date_trunc('day', s.hour, 'UTC') = a.bucket)
    union all
    select s.site, s.bucket${perKey ? ', f.kind, f.page' : ''}, f.events, f.users
    from (select distinct site, date_trunc('day', s.hour, 'UTC') as bucket from headcount_stale_hours s) s
    cross join lateral (
      select ${perKey ? 'kind, page, ' : ''}sum(events)::bigint as events, hll_union_agg(users) as users
      from ${finer}
      where site = s.site and bucket >= s.bucket and bucket < s.bucket + interval '${width}'
      ${perKey ? 'group by kind, page' : ''}
    ) f;
  `;
}

const dayViews = (width: string): string =>
  dayView('events_daily', 'events_daily_cagg', 'events_hourly', true, width) +
  dayView('totals_daily', 'totals_daily_cagg', 'totals_hourly', false, width);

export async function up(pgm: MigrationBuilder): Promise<void> {
  pgm.sql((await readMode(pgm)) === 'timescaledb' ? dayViews('24 hours') : `alter function ${MAINTAIN} set timezone = 'UTC';`);
}

export async function down(pgm: MigrationBuilder): Promise<void> {
  pgm.sql((await readMode(pgm)) === 'timescaledb' ? dayViews('1 day') : `alter function ${MAINTAIN} reset timezone;`);
}
