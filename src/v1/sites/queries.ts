import postgres from 'postgres';
import { deadlineOf, type Sql } from '../../db/client.js';
import { withDeadline } from '../../db/deadline.js';
import { sqlState } from '../../db/errors.js';
import { combinationDims, propDims, type Site, type SiteSettings } from './schemas.js';

/** The roller's lock (sql/common/headcount_roll_up.sql): rollups change between two of its passes. */
const ROLLER_LOCK = 1751937123;

interface SiteRow {
  site: string;
  timezone: string | null;
  first_event: Date | null;
  last_event: Date | null;
  events: number;
  dims: string[];
}

const siteOf = (row: SiteRow): Site => ({
  site: row.site,
  timezone: row.timezone,
  first_event: row.first_event?.toISOString() ?? null,
  last_event: row.last_event?.toISOString() ?? null,
  events: row.events,
  props: row.dims.filter((d) => d.startsWith('props.') && !d.includes(',')).map((d) => d.slice('props.'.length)),
  combinations: row.dims.filter((d) => d.includes(',')).map((d) => d.split(',')),
});

/** A site without events or settings: what a key bound to a site that has none yet sees. */
export const emptySite = (site: string): Site => ({
  site,
  timezone: null,
  first_event: null,
  last_event: null,
  events: 0,
  props: [],
  combinations: [],
});

/**
 * Every site (`only` null) or one, as headcount_sites has it plus what is still queued in
 * headcount_pending: one statement, so one snapshot, in which the roller has moved each
 * acknowledged event or not (never both, never neither). A site is listed once it has a
 * row or a queued event. The queue is small (the roller empties it continuously), and
 * without an index on site it is read whole.
 */
const sitesQuery = (sql: Sql | postgres.TransactionSql, only: string | null) => sql<SiteRow[]>`
  with queued as (
    select p.site, min(p.time) as first_event, max(p.time) as last_event, sum(p.weight)::bigint as events
    from headcount_pending p
    where ${only}::text is null or p.site = ${only}
    group by p.site
  ),
  known as (
    select s.site, s.timezone, s.first_event, s.last_event, s.events
    from headcount_sites s
    where ${only}::text is null or s.site = ${only}
  )
  select /* v1/sites/read */
    coalesce(k.site, q.site) as site,
    k.timezone,
    least(k.first_event, q.first_event) as first_event,
    greatest(k.last_event, q.last_event) as last_event,
    (coalesce(k.events, 0) + coalesce(q.events, 0))::bigint as events,
    array(select r.dims from headcount_rollups r where r.site = coalesce(k.site, q.site) order by r.dims) as dims
  from known k
  full join queued q on q.site = k.site
  order by 1
`;

/** Every site (`only` null), or the one named if it exists. */
export async function readSites(sql: Sql, only: string | null): Promise<Site[]> {
  return (await withDeadline(sitesQuery(sql, only), deadlineOf(sql))).map(siteOf);
}

/** What a read needs to know of a site: whether it exists (a row or a queued event), and its time zone. */
export async function siteStatus(sql: Sql, site: string): Promise<{ known: boolean; timezone: string | null }> {
  const [row]: [{ known: boolean; timezone: string | null }?] = await withDeadline(
    sql`
      select /* v1/sites/status */
        s.site is not null or exists (select from headcount_pending p where p.site = k.site) as known,
        s.timezone
      from (select ${site}::text as site) k
      left join headcount_sites s on s.site = k.site
    `,
    deadlineOf(sql),
  );
  return row!;
}

export type Change = { created: Site } | { changed: Site } | { exists: true } | { missing: true };

/** The database refused a setting (a time zone it does not know): `field` names it. */
export class SettingError extends Error {
  override name = 'SettingError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Creates a site (`create`) or changes one, in one transaction: its time zone, and its
 * declared rollups, each a row of headcount_rollups. A declaration that stays keeps its
 * row and `since`; a new one counts from now; one removed goes with its rollup rows, so
 * that declaring it again starts afresh. The roller's lock is held meanwhile, so that no
 * pass that still read the old declarations writes rollup rows after they are gone (a
 * pass holds it at most a few hundred ms; lock_timeout bounds the wait).
 */
export async function saveSite(sql: Sql, site: string, settings: SiteSettings, mode: { create: boolean }): Promise<Change> {
  const deadlineMs = deadlineOf(sql);
  const declared =
    settings.props === undefined && settings.combinations === undefined
      ? null
      : {
          props: settings.props?.map(propDims),
          combinations: settings.combinations?.map(combinationDims),
        };
  try {
    return await withDeadline(
      sql.begin(async (tx): Promise<Change> => {
        await tx`select set_config('lock_timeout', ${`${deadlineMs}ms`}, true) /* v1/sites/save */`;
        if (declared) await tx`select pg_advisory_xact_lock(${ROLLER_LOCK}) /* v1/sites/save */`;
        if (settings.timezone) {
          // The database's own check (headcount_use_zone), as for a stats request.
          await tx`select headcount_day_start(current_date, ${settings.timezone}) /* v1/sites/save */`;
        }
        const [status]: [{ known: boolean }?] = await tx`
          select /* v1/sites/save */
            exists (select from headcount_sites s where s.site = ${site})
            or exists (select from headcount_pending p where p.site = ${site}) as known
        `;
        if (mode.create) {
          // on conflict: another request created it meanwhile.
          const inserted = status!.known
            ? []
            : await tx`
                insert into headcount_sites (site, timezone) /* v1/sites/save */
                values (${site}, ${settings.timezone ?? null})
                on conflict (site) do nothing
                returning site
              `;
          if (inserted.length === 0) return { exists: true };
        } else {
          if (!status!.known) return { missing: true };
          // A site whose events are all still queued has no row yet: the roller's upsert adds
          // to this one. now() in the values, not in the update: citus mode takes only
          // immutable functions in an upsert's DO UPDATE SET on a distributed table.
          await tx`
            insert into headcount_sites as s (site, timezone, updated) /* v1/sites/save */
            values (${site}, ${settings.timezone ?? null}, now())
            on conflict (site) do update
            set timezone = case when ${settings.timezone !== undefined}::boolean then excluded.timezone else s.timezone end,
                updated = excluded.updated
          `;
        }
        for (const [kind, wanted] of [
          ['props', declared?.props],
          ['combinations', declared?.combinations],
        ] as const) {
          if (wanted === undefined) continue;
          // props.<name> or a combination (its names joined by commas).
          const ofKind = kind === 'props' ? tx`strpos(r.dims, ',') = 0` : tx`strpos(r.dims, ',') > 0`;
          const removed = await tx<{ dims: string }[]>`
            delete from headcount_rollups r /* v1/sites/save */
            where r.site = ${site} and ${ofKind} and r.dims <> all (${wanted}::text[])
            returning r.dims
          `;
          const gone = removed.map((r) => r.dims);
          if (gone.length > 0) {
            await tx`delete from dimensions_hourly where site = ${site} and dims = any (${gone}::text[]) /* v1/sites/save */`;
            await tx`delete from dimensions_daily where site = ${site} and dims = any (${gone}::text[]) /* v1/sites/save */`;
            await tx`delete from dimensions_weekly where site = ${site} and dims = any (${gone}::text[]) /* v1/sites/save */`;
            await tx`delete from headcount_rollup_days where site = ${site} and dims = any (${gone}::text[]) /* v1/sites/save */`;
          }
          await tx`
            insert into headcount_rollups (site, dims, since) /* v1/sites/save */
            select ${site}, d, now() from unnest(${wanted}::text[]) d
            on conflict (site, dims) do nothing
          `;
        }
        const [saved] = (await sitesQuery(tx, site)).map(siteOf);
        return mode.create ? { created: saved! } : { changed: saved! };
      }),
      2 * deadlineMs,
    );
  } catch (err) {
    // headcount_use_zone's refusal: SQLSTATE 22023 naming the argument (COLUMN).
    if (sqlState(err) === '22023' && err instanceof postgres.PostgresError && err.column_name === 'timezone') {
      throw new SettingError('timezone', err.message);
    }
    throw err;
  }
}
