-- GET /v1/stats as a SQL function: the HTTP route and an analyst in psql run the same
-- implementation (the route only calls headcount_stats). It reads the documented
-- relations only, which are read-your-writes in both storage modes.
--
-- How a bucket is answered: its local calendar bounds [s, e) are converted to UTC
-- instants and tiled with the coarsest UTC sketches that fit inside, whole UTC days,
-- then whole UTC hours at either end, then minutes at either end (a +05:30 or +05:45
-- midnight falls inside a UTC hour). users = the cardinality of the union of those
-- sketches: exact while the union is an explicit hll, never a sum of counts.
--
-- Raw events, minutes and hours are kept 60 days (headcount_settings.retention), day
-- sketches sketch_retention: before the first retained UTC day only day pieces can be
-- answered, so a bucket that would need a minute or hour piece there is refused with a
-- message saying what can be asked instead.
--
-- Bad arguments raise SQLSTATE 22023 with COLUMN set to the argument's name: the route
-- turns those into a 400 naming the query parameter.
--
-- jit = off: its lookup plans many small index scans over every chunk a range covers,
-- and over 60 days of data the planner's cost passed jit_above_cost: PostgreSQL then
-- compiled ~450 functions per call, about 180 ms of a 30-day query that otherwise takes
-- 20-30 ms (npm run bench, "60-day volume"). The setting holds for every caller.
create or replace function headcount_stats(
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
set jit = off
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
    -- Per kind and page (filtered) when the request filters or groups ($8), else the
    -- site totals. There is no per-minute total: minutes are always read per kind and page.
    select 'day'::text as level, r.bucket, r.kind, r.page, r.events, r.users
    from events_daily r, keys k
    where $8 and r.site = $1 and r.bucket = any (k.days)
      and ($9::text[] is null or r.kind = any ($9)) and ($10::text[] is null or r.page = any ($10))
    union all
    select 'day'::text as level, r.bucket, null::text, null::text, r.events, r.users
    from totals_daily r, keys k
    where not $8 and r.site = $1 and r.bucket = any (k.days)
    union all
    select 'hour'::text as level, r.bucket, r.kind, r.page, r.events, r.users
    from events_hourly r, keys k
    where $8 and r.site = $1 and r.bucket = any (k.hours)
      and ($9::text[] is null or r.kind = any ($9)) and ($10::text[] is null or r.page = any ($10))
    union all
    select 'hour'::text as level, r.bucket, null::text, null::text, r.events, r.users
    from totals_hourly r, keys k
    where not $8 and r.site = $1 and r.bucket = any (k.hours)
    union all
    select 'minute'::text as level, r.bucket, r.kind, r.page, r.events, r.users
    from events_minutely r, keys k
    where r.site = $1 and r.bucket = any (k.minutes)
      and ($9::text[] is null or r.kind = any ($9)) and ($10::text[] is null or r.page = any ($10))
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

comment on function headcount_stats(text, timestamptz, timestamptz, text, text, text[], text[], text, integer) is
  'headcount: distinct users and events of a site per local bucket of [from_time, to_time) (GET /v1/stats). granularity minute|hour|day|week|month|total; timezone an IANA name or ±HH:MM; kinds/pages filter (null: all); group_by kind|page keeps the top group_limit by users. users is a union of sketches, exact while approximate is false';
