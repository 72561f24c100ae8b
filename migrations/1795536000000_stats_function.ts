import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * v0.3: the /v1/stats query as SQL functions, so that the HTTP route and an analyst in
 * psql run the same implementation (the route only calls headcount_stats). The same in
 * both storage modes: they read the documented relations only, which are
 * read-your-writes in both.
 *
 *   headcount_zone(timezone)                 an IANA name or ±HH:MM, checked, as a TimeZone setting
 *   headcount_day_start(day, timezone)       the instant a local calendar day starts
 *   headcount_format_time(instant, timezone) 2026-11-23T00:00:00+05:30
 *   headcount_stats(site, from_time, to_time, granularity, timezone, kinds, pages,
 *                   group_by, group_limit)   distinct users and events per local bucket
 *
 * How a bucket is answered: its local calendar bounds [s, e) are converted to UTC
 * instants and tiled with the coarsest UTC sketches that fit inside, whole UTC days,
 * then whole UTC hours at either end, then minutes at either end (a +05:30 or +05:45
 * midnight falls inside a UTC hour). users = the cardinality of the union of those
 * sketches: exact while the union is an explicit hll, never a sum of counts.
 *
 * Raw events, minutes and hours are kept 60 days (headcount_settings.retention), day
 * sketches sketch_retention: before the first retained UTC day only day pieces can be
 * answered, so a bucket that would need a minute or hour piece there is refused with a
 * message saying what can be asked instead.
 *
 * Bad arguments raise SQLSTATE 22023 with COLUMN set to the argument's name: the route
 * turns those into a 400 naming the query parameter.
 */

/**
 * A function whose body runs with TimeZone set to its `timezone` argument; the SET
 * clause restores the caller's TimeZone when it returns.
 */
const zoned = (signature: string, returns: string, body: string[]): string => `
  create function ${signature} returns ${returns}
  language plpgsql stable
  set timezone = 'UTC'
  as $$
  begin
    perform headcount_use_zone(timezone);
    ${body.join('\n    ')}
  end
  $$;
`;

/**
 * The rows of one level of sketches at the keys the pieces cover: per kind and page
 * (filtered) when the request filters or groups ($8), else the site totals. Parameters
 * as headcount_stats passes them to EXECUTE.
 */
function lookup(level: 'day' | 'hour' | 'minute', keys: string, relation: string, perKey: boolean): string {
  const filters = perKey ? `and ($9::text[] is null or r.kind = any ($9)) and ($10::text[] is null or r.page = any ($10))` : '';
  const when = level === 'minute' ? 'true' : perKey ? '$8' : 'not $8';
  return `
    select '${level}'::text as level, r.bucket, ${perKey ? 'r.kind, r.page' : 'null::text, null::text'}, r.events, r.users
    from ${relation} r, keys k
    where ${when} and r.site = $1 and r.bucket = any (k.${keys}) ${filters}`;
}

// There is no per-minute total: minutes are always read per kind and page.
const FOUND = [
  lookup('day', 'days', 'events_daily', true),
  lookup('day', 'days', 'totals_daily', false),
  lookup('hour', 'hours', 'events_hourly', true),
  lookup('hour', 'hours', 'totals_hourly', false),
  lookup('minute', 'minutes', 'events_minutely', true),
].join('\n    union all');

const STATS = `
  create function headcount_zone(timezone text) returns text
  language plpgsql immutable
  as $$
  declare
    m text[];
  begin
    if timezone is null then
      raise exception 'timezone is required: an IANA name such as Asia/Kolkata, or an offset such as +05:30'
        using errcode = '22023', column = 'timezone';
    end if;
    m := regexp_match(timezone, '^([+-])([0-9]{2}):([0-9]{2})$');
    if m is not null then
      if m[2]::int > 18 or m[3]::int > 59 or (m[2]::int = 18 and m[3]::int > 0) then
        raise exception 'timezone % is not an offset from -18:00 to +18:00', timezone
          using errcode = '22023', column = 'timezone';
      end if;
      -- A POSIX zone, whose sign is the opposite of ISO 8601's: UTC-05:30 is 5:30 east.
      return 'UTC' || case m[1] when '+' then '-' else '+' end || m[2] || ':' || m[3];
    end if;
    -- Names only: PostgreSQL would also read POSIX strings such as UTC+3 (3 hours west).
    if timezone !~ '^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$' then
      raise exception 'timezone % is neither an IANA time zone name (Asia/Kolkata) nor an offset (+05:30)', timezone
        using errcode = '22023', column = 'timezone';
    end if;
    return timezone;
  end
  $$;

  ${zoned('headcount_day_start(day date, timezone text)', 'timestamptz', [
    '-- From local noon, which exists on every day, to the start of the day as date_trunc',
    '-- sees it: the same instant the stats buckets start at.',
    "return date_trunc('day', (day + time '12:00')::timestamptz);",
  ])}
  ${zoned('headcount_format_time(instant timestamptz, timezone text)', 'text', [
    `return to_char(instant, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM');`,
  ])}

  -- Sets TimeZone for the rest of the calling function (callers have a SET timezone
  -- clause, which confines it to them).
  create function headcount_use_zone(timezone text) returns void
  language plpgsql
  as $$
  begin
    perform set_config('timezone', headcount_zone(timezone), true);
  exception when invalid_parameter_value then
    if sqlerrm like 'timezone %' then raise; end if;
    raise exception 'timezone % is not a time zone this database knows (an IANA name such as Asia/Kolkata, or an offset such as +05:30)', timezone
      using errcode = '22023', column = 'timezone';
  end
  $$;

  create function headcount_stats(
    site text,
    from_time timestamptz,
    to_time timestamptz,
    granularity text default 'total',
    timezone text default 'UTC',
    kinds text[] default null,
    pages text[] default null,
    group_by text default null,
    group_limit integer default 10
  )
  returns table (
    bucket timestamptz,
    bucket_label text,
    kind text,
    page text,
    users bigint,
    events bigint,
    approximate boolean
  )
  language plpgsql stable
  set timezone = 'UTC'
  as $$
  #variable_conflict use_column
  declare
    g text := lower(coalesce(granularity, 'total'));
    step interval;
    bucket_count bigint;
    keyed boolean := kinds is not null or pages is not null or group_by is not null;
    raw_from timestamptz;
    sketch_from timestamptz;
    old_piece record;
  begin
    if site is null or site !~ '^[a-z0-9][a-z0-9._-]{0,127}$' then
      raise exception 'site must be a site name: lowercase letters, digits, ".", "_" or "-", at most 128'
        using errcode = '22023', column = 'site';
    end if;
    if from_time is null or to_time is null then
      raise exception '% is required', case when from_time is null then 'from' else 'to' end
        using errcode = '22023', column = case when from_time is null then 'from' else 'to' end;
    end if;
    if from_time >= to_time then
      raise exception 'from must be before to (the range is half-open, [from, to))'
        using errcode = '22023', column = 'to';
    end if;
    if date_trunc('minute', from_time) <> from_time or date_trunc('minute', to_time) <> to_time then
      raise exception '% must be on a whole minute: the finest sketches are per minute',
        case when date_trunc('minute', from_time) <> from_time then 'from' else 'to' end
        using errcode = '22023', column = case when date_trunc('minute', from_time) <> from_time then 'from' else 'to' end;
    end if;
    if g not in ('minute', 'hour', 'day', 'week', 'month', 'total') then
      raise exception 'granularity must be minute, hour, day, week, month or total, not %', granularity
        using errcode = '22023', column = 'granularity';
    end if;
    if group_by is not null and group_by not in ('kind', 'page') then
      raise exception 'group_by must be kind or page, not %', group_by
        using errcode = '22023', column = 'group_by';
    end if;
    if group_limit is null or group_limit < 1 or group_limit > 1000 then
      raise exception 'limit must be a whole number from 1 to 1000'
        using errcode = '22023', column = 'limit';
    end if;
    if g = 'minute' and to_time - from_time > interval '48 hours' then
      raise exception 'granularity minute covers at most 48 hours per request; this range is %', to_time - from_time
        using errcode = '22023', column = 'to';
    end if;
    -- Checked here, used by headcount_stats_pieces only: this function reads the relations
    -- with TimeZone UTC (its SET clause), as they are defined.
    perform headcount_zone(timezone);

    select date_trunc('day', now() - s.retention, 'UTC'), date_trunc('day', now() - s.sketch_retention, 'UTC')
    into raw_from, sketch_from
    from headcount_settings s;
    if from_time < sketch_from then
      raise exception 'from is before %, the oldest day whose sketches are kept (sketch retention %)',
        headcount_format_time(sketch_from, 'UTC'), (select s.sketch_retention from headcount_settings s)
        using errcode = '22023', column = 'from';
    end if;

    step := case g when 'minute' then interval '1 minute' when 'hour' then interval '1 hour'
                   when 'day' then interval '1 day' when 'week' then interval '1 week'
                   when 'month' then interval '1 month' else to_time - from_time end;
    -- An upper bound of the number of buckets (a local day may be 23 hours).
    bucket_count := case g when 'total' then 1
      else floor(extract(epoch from to_time - from_time) / extract(epoch from step * 0.95))::bigint + 2 end;
    if bucket_count > 10002 then
      raise exception 'granularity % gives more than 10000 buckets over this range: use a coarser one or a shorter range', g
        using errcode = '22023', column = 'granularity';
    end if;

    -- Anything before the first retained UTC day must be whole UTC days.
    select p.ps into old_piece
    from headcount_stats_pieces(from_time, to_time, g, step, bucket_count, timezone) p
    where p.level <> 'day' and p.ps < raw_from
    limit 1;
    if found then
      raise exception 'the range reaches before %, the start of the %-day raw retention: before it only UTC day sketches are kept. Ask for granularity day, week, month or total with timezone UTC and from/to on UTC midnights, or start the range at or after %',
        headcount_format_time(raw_from, 'UTC'),
        (select extract(day from s.retention)::int from headcount_settings s),
        headcount_format_time(raw_from, 'UTC')
        using errcode = '22023', column = 'from';
    end if;

    -- Every UTC day, hour and minute the pieces cover, then one lookup per level by those
    -- keys: each relation is read once, by its primary key, whatever the number of buckets.
    -- EXECUTE plans it with these values, so that TimescaleDB excludes chunks.
    return query execute $q$
    with pieces as (
      select * from headcount_stats_pieces($2, $3, $4, $5, $6, $7)
    ),
    units as (
      select p.n, p.level, u.u
      from pieces p
      cross join lateral generate_series(
        p.ps,
        p.pe - case p.level when 'day' then interval '1 day' when 'hour' then interval '1 hour' else interval '1 minute' end,
        case p.level when 'day' then interval '1 day' when 'hour' then interval '1 hour' else interval '1 minute' end
      ) u(u)
    ),
    keys as (
      select array_agg(u) filter (where level = 'day') as days,
             array_agg(u) filter (where level = 'hour') as hours,
             array_agg(u) filter (where level = 'minute') as minutes
      from units
    ),
    found as (
      ${FOUND}
    ),
    rows as (
      select un.n, case $11 when 'kind' then f.kind when 'page' then f.page end as grp, f.events, f.users
      from units un
      join found f on f.level = un.level and f.bucket = un.u
    ),
    buckets as (
      select distinct p.n, p.bucket, p.label from pieces p
    ),
    per_bucket as (
      select r.n, r.grp, sum(r.events)::bigint as events, hll_union_agg(r.users) as users
      from rows r
      group by r.n, r.grp
    ),
    groups as (
      -- Without group_by: one group (null). With it: the top $12 over the whole range by
      -- distinct users (a union over every bucket), then events, then name.
      select null::text as grp, 1::bigint as rank
      where $11 is null
      union all
      select t.grp, row_number() over (order by t.users desc, t.events desc, t.grp)
      from (
        select pb.grp, round(hll_cardinality(hll_union_agg(pb.users))) as users, sum(pb.events) as events
        from per_bucket pb
        where $11 is not null
        group by pb.grp
        order by 2 desc, 3 desc, 1
        limit $12
      ) t
    )
    select b.bucket,
           b.label,
           case when $11 = 'kind' then gr.grp end,
           case when $11 = 'page' then gr.grp end,
           coalesce(round(hll_cardinality(pb.users)), 0)::bigint,
           coalesce(pb.events, 0)::bigint,
           coalesce(hll_type(pb.users) > 2, false)
    from buckets b
    cross join groups gr
    left join per_bucket pb on pb.n = b.n and pb.grp is not distinct from gr.grp
    order by b.n, gr.rank
    $q$
    using site, from_time, to_time, g, step, bucket_count, timezone, keyed, kinds, pages, group_by, group_limit;
  end
  $$;

  -- The local buckets of [from_time, to_time) in timezone and the UTC pieces that tile
  -- each: (bucket number, bucket start, its label, level, [ps, pe)). The zone is set for
  -- this function only: calendar arithmetic (+ 1 day, date_trunc) follows it here, and
  -- nowhere else.
  create function headcount_stats_pieces(
    from_time timestamptz, to_time timestamptz, g text, step interval, bucket_count bigint, timezone text
  )
  returns table (n bigint, bucket timestamptz, label text, level text, ps timestamptz, pe timestamptz)
  language plpgsql stable
  set timezone = 'UTC'
  as $$
  #variable_conflict use_column
  begin
    perform headcount_use_zone(timezone);
    return query
    with starts as (
      -- Minutes: every UTC minute is a local one. Hours: the instants on a 15-minute
      -- grid (every zone's offset is a multiple of 15 minutes) at a local minute 0,
      -- which counts a repeated DST hour twice and follows a 30-minute DST shift. Days,
      -- weeks and months: the local start of the first one plus i steps, truncated
      -- again, so that a day missing its midnight does not shift the days after it.
      select case g
               when 'total' then from_time
               when 'minute' then date_trunc('minute', from_time) + i * interval '1 minute'
               when 'hour' then date_trunc('hour', from_time, 'UTC') - interval '2 hours' + i * interval '15 minutes'
               else date_trunc(g, date_trunc(g, from_time) + i * step)
             end as b
      from generate_series(0::bigint, case when g = 'hour' then 4 * bucket_count + 8 else bucket_count end) i
    ),
    buckets as (
      select row_number() over (order by b) - 1 as n, b,
             greatest(b, from_time) as s,
             least(coalesce(lead(b) over (order by b), to_time), to_time) as e
      from (select distinct b from starts where b < to_time and (g <> 'hour' or extract(minute from b) = 0)) d
    ),
    edges as (
      select bk.*,
             date_trunc('hour', bk.s, 'UTC') + case when date_trunc('hour', bk.s, 'UTC') = bk.s then interval '0' else interval '1 hour' end as hs,
             date_trunc('hour', bk.e, 'UTC') as he,
             date_trunc('day', bk.s, 'UTC') + case when date_trunc('day', bk.s, 'UTC') = bk.s then interval '0' else interval '1 day' end as ds,
             date_trunc('day', bk.e, 'UTC') as de
      from buckets bk
      -- The buckets before the one holding from_time end before it.
      where bk.s < bk.e
    )
    select ed.n, ed.b, to_char(ed.b, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'), v.level, v.ps, v.pe
    from edges ed
    cross join lateral (values
      ('day', ed.ds, ed.de, ed.ds < ed.de),
      ('hour', ed.hs, case when ed.ds < ed.de then ed.ds else ed.he end, true),
      ('hour', ed.de, ed.he, ed.ds < ed.de),
      ('minute', ed.s, least(ed.hs, ed.e), true),
      ('minute', ed.he, ed.e, ed.hs <= ed.he)
    ) v(level, ps, pe, used)
    where v.used and v.ps < v.pe;
  end
  $$;

  comment on function headcount_stats(text, timestamptz, timestamptz, text, text, text[], text[], text, integer) is
    'headcount: distinct users and events of a site per local bucket of [from_time, to_time) (GET /v1/stats). granularity minute|hour|day|week|month|total; timezone an IANA name or ±HH:MM; kinds/pages filter (null: all); group_by kind|page keeps the top group_limit by users. users is a union of sketches, exact while approximate is false';
  comment on function headcount_day_start(date, text) is
    'headcount: the instant the local calendar day starts in timezone (IANA name or ±HH:MM)';
  comment on function headcount_format_time(timestamptz, text) is
    'headcount: an instant as ISO 8601 local time with its offset in timezone';
`;

export function up(pgm: MigrationBuilder): void {
  pgm.sql(STATS);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    drop function headcount_stats(text, timestamptz, timestamptz, text, text, text[], text[], text, integer);
    drop function headcount_stats_pieces(timestamptz, timestamptz, text, interval, bigint, text);
    drop function headcount_format_time(timestamptz, text);
    drop function headcount_day_start(date, text);
    drop function headcount_use_zone(text);
    drop function headcount_zone(text);
  `);
}
