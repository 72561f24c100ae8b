-- GET /v1/stats as a SQL function: the HTTP route and an analyst in psql run the same
-- implementation (the route only calls headcount_stats). It reads the documented
-- relations only, which are read-your-writes in both storage modes.
--
-- How a bucket is answered: its local calendar bounds [s, e) are converted to UTC
-- instants and tiled with the coarsest UTC sketches that fit inside, whole UTC days,
-- then whole UTC hours at either end, then whole UTC quarter hours, then minutes at
-- either end (a +05:30 or +05:45 midnight falls inside a UTC hour):
-- headcount_stats_pieces. users = the cardinality of
-- the union of those sketches and of any raw events read: exact while the union is an
-- explicit hll, never a sum of counts.
--
-- Where the sketches come from, by what the filters and groups name besides kind:
--  - nothing, or page: events_daily, events_hourly, events_minutely (per kind and page),
--    or totals_daily and totals_hourly when nothing is filtered or grouped; quarter
--    hours from kinds_15m (per kind, from headcount_settings.quarters_from on) plus the
--    events still queued for it (headcount_pending) unless page is named, else minutes;
--  - dimensions a rollup holds (one standard dimension; a declared property or
--    combination, from the first UTC day starting an hour after its declaration): dimensions_daily and
--    dimensions_hourly (their rows of kind '*', every kind in one, unless the kind is
--    filtered or grouped; then also dimensions_weekly for the built UTC weeks whose seven
--    days a bucket reads from sketches), plus the events still queued for them (headcount_pending), and
--    raw events for minutes, for hours older than a week (headcount_rollup_hours_from),
--    for days that passed the rollup's value cap, and for days before a declaration;
--  - anything else (page with another dimension, a property or combination not
--    declared): raw events, refused (SQLSTATE 54000) past max_raw_rows.
--
-- Raw events, minutes and hours are kept 60 days (headcount_settings.retention), day
-- sketches sketch_retention: before the first retained UTC day only day pieces from
-- sketches can be answered, so a bucket that would need anything else there is refused
-- with a message saying what can be asked instead.
--
-- compare = 'previous_period' adds, per row, the users and events of the same bucket
-- number and group over [from - (to - from), from).
--
-- Bad arguments raise SQLSTATE 22023 with COLUMN set to the argument's name: the route
-- turns those into a 400 naming the query parameter.
--
-- One snapshot: every statement here reads with the caller's (the function is stable),
-- so what decides a path (overflowed days, rollups) and what it reads agree. Under READ
-- COMMITTED a refresher pass can still move a watermark between that snapshot and the
-- planning of the read: the read is then refused with SQLSTATE 40001, to be run again,
-- rather than answered without what the pass materialized (headcount_check_snapshot).
-- Under REPEATABLE READ, as the service reads, that cannot happen.
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
  group_limit integer default 10,
  filters text[] default null,
  compare text default null,
  max_raw_rows bigint default 2000000
)
returns table (
  bucket timestamptz,
  bucket_label text,
  kind text,
  page text,
  group_values text[],
  users bigint,
  events bigint,
  approximate boolean,
  previous_users bigint,
  previous_events bigint
)
language plpgsql stable
set timezone = 'UTC'
set jit = off
as $$
#variable_conflict use_column
declare
  g text := lower(coalesce(granularity, 'total'));
  -- The relations of hours and days this reads: in postgres and citus modes the tables of
  -- parts under the documented views (each key's rows unioned here with the rest: a view
  -- that unions them first could not take the lookups by key below), in timescaledb mode
  -- the views over the continuous aggregates (docs/storage.md, "Parts of the per-insert
  -- aggregates"). Minutes are events_minutely_parts in every mode.
  own text;
  step interval;
  bucket_count bigint;
  comparing boolean;
  prev_from timestamptz;
  raw_from timestamptz;
  sketch_from timestamptz;
  parsed jsonb;
  grp text[] := '{}';
  needed text[];
  path text;
  rollup text;
  names text[];
  raw_before timestamptz := '-infinity';
  raw_days timestamptz[] := '{}';
  rel jsonb;
  raw jsonb;
  grp_rel text;
  grp_raw text;
  grp_raw_cols text;
  grp_raw_keys text;
  grp_raw_arr text;
  pred_rel text;
  pred_raw text;
  p_period int[];
  p_n bigint[];
  p_bucket timestamptz[];
  p_label text[];
  p_level text[];
  p_ps timestamptz[];
  p_pe timestamptz[];
  u_period int[];
  u_n bigint[];
  u_level text[];
  u_u timestamptz[];
  u_w interval[];
  u_raw boolean[];
  hours_from timestamptz;
  found_sql text;
  extra_sql text := '';
  old record;
  raw_rows bigint;
  raw_range_count bigint := 0;
  minutes_raw boolean;
  minute_rows bigint;
  quarters boolean;
  quarters_from timestamptz;
  every_kind text;
  use_weeks boolean;
  per_bucket_sql text;
  sketch_levels text[];
  by_kind_page boolean;
begin
  select a.g, a.step, a.bucket_count into g, step, bucket_count
  from headcount_check_stats_arguments(site, from_time, to_time, granularity, group_limit, compare) a;
  grp := headcount_parse_group_by(group_by);
  comparing := compare is not null;
  -- Checked here, used by headcount_stats_pieces only: this function reads the relations
  -- with TimeZone UTC (its SET clause), as they are defined.
  perform headcount_zone(timezone);
  parsed := headcount_parse_filters(filters, kinds, pages);

  select date_trunc('day', now() - s.retention, 'UTC'), date_trunc('day', now() - s.sketch_retention, 'UTC'), s.quarters_from,
         case when s.storage_mode = 'timescaledb' then '' else '_parts' end
  into raw_from, sketch_from, quarters_from, own
  from headcount_settings s;
  prev_from := from_time - (to_time - from_time);
  if (case when comparing then prev_from else from_time end) < sketch_from then
    raise exception '% is before %, the oldest day whose sketches are kept (sketch retention %)',
      case when comparing and from_time >= sketch_from then 'the previous period' else 'from' end,
      headcount_format_time(sketch_from, 'UTC'), (select s.sketch_retention from headcount_settings s)
      using errcode = '22023', column = case when comparing and from_time >= sketch_from then 'compare' else 'from' end;
  end if;


  perform headcount_check_bucket_count(g, bucket_count);

  -- Which sketches can answer: see the head of this file.
  needed := array(
    select distinct d from (
      select jsonb_array_elements(parsed) ->> 'dimension' as d
      union all
      select unnest(grp)
    ) x
    where d <> 'kind'
    order by d
  );
  if needed && array['entry_page', 'exit_page'] then
    raise exception 'entry_page and exit_page are dimensions of visits: ask for visit metrics only (metrics=visits,bounce_rate,visit_duration,pageviews_per_visit)'
      using errcode = '22023', column = case when grp && array['entry_page', 'exit_page'] then 'group_by' else 'filter' end;
  end if;
  if needed <@ array['page'] then
    path := 'events';
  elsif not 'page' = any (needed) then
    if cardinality(needed) = 1 and needed[1] = any (headcount_dimensions()) then
      rollup := needed[1];
    else
      -- From the first UTC day that starts an hour or more after the declaration: events
      -- moved before it lack the rollup, and none of them can be that late (ingest takes
      -- times at most 5 minutes ahead).
      select r.dims, date_trunc('day', r.since + interval '1 hour', 'UTC') + interval '1 day'
      into rollup, raw_before
      from headcount_rollups r
      where r.site = headcount_stats.site and string_to_array(r.dims, ',') @> needed
      order by cardinality(string_to_array(r.dims, ',')), r.dims
      limit 1;
    end if;
    if rollup is not null then
      path := 'rollup';
      raw_before := coalesce(raw_before, '-infinity');
      raw_days := array(
        select o.day from headcount_rollup_days o
        where o.site = headcount_stats.site and o.dims = rollup and o.overflowed
          and o.day >= date_trunc('day', least(from_time, prev_from), 'UTC') and o.day < to_time
      );
    end if;
  end if;
  if path is null then
    path := 'raw';
    raw_before := 'infinity';
  end if;
  -- Quarter hours hold kinds, not pages: elsewhere a quarter piece is read as minutes.
  quarters := path = 'events' and cardinality(needed) = 0;
  -- The rollups' and quarter hours' rows of every kind at once (kind '*') unless the kind
  -- is filtered or grouped; then those of each kind.
  every_kind := case when 'kind' = any (grp) or exists (select from jsonb_array_elements(parsed) f where f ->> 'dimension' = 'kind')
                     then 'r.kind <> ''*''' else 'r.kind = ''*''' end;
  -- Week rows hold every kind at once: read where the rows of kind '*' are.
  use_weeks := path = 'rollup' and every_kind = 'r.kind = ''*''';

  -- Each dimension's expression in the relation read (r) and in raw or queued events (e).
  if path = 'events' then
    rel := jsonb_build_object('kind', 'r.kind', 'page', 'r.page');
  else
    names := string_to_array(rollup, ',');
    rel := jsonb_build_object('kind', 'r.kind') ||
      coalesce((select jsonb_object_agg(n, format('r.vals[%s]', i)) from unnest(names) with ordinality x(n, i)), '{}');
  end if;
  raw := jsonb_build_object('kind', 'e.kind', 'page', 'e.page') ||
    (select jsonb_object_agg(d, format('e.%I', d)) from unnest(headcount_dimensions()) d) ||
    coalesce((select jsonb_object_agg(d, format('(e.props ->> %L)', substr(d, 7)))
              from unnest(needed) d where starts_with(d, 'props.')), '{}');
  grp_rel := case when cardinality(grp) = 0 then '''{}''::text[]'
    else format('array[%s]::text[]', (select string_agg(rel ->> x, ', ' order by i) from unnest(grp) with ordinality t(x, i))) end;
  grp_raw := case when cardinality(grp) = 0 then '''{}''::text[]'
    else format('array[%s]::text[]', (select string_agg(raw ->> x, ', ' order by i) from unnest(grp) with ordinality t(x, i))) end;
  -- The raw events of a one-dimension group are grouped by its value as text (g), the
  -- array made after grouping: an array hashed per event took a fifth of the raw read
  -- (group_by=country over 137,689 raw events: 124 ms against 101, docs/benchmarks.md,
  -- "Raw events grouped by text"). Two dimensions stay one array: as two text keys the
  -- planner sorted the events instead (161 ms against the array's 153).
  if cardinality(grp) = 0 then
    grp_raw_cols := '';
    grp_raw_keys := '';
    grp_raw_arr := grp_raw;
  elsif cardinality(grp) = 1 then
    grp_raw_cols := format('%s as g, ', raw ->> grp[1]);
    grp_raw_keys := ', e.g';
    grp_raw_arr := 'array[e.g]::text[]';
  else
    grp_raw_cols := format('%s as g, ', grp_raw);
    grp_raw_keys := ', e.g';
    grp_raw_arr := 'e.g';
  end if;
  pred_rel := case when path = 'raw' then 'false' else headcount_predicate(parsed, rel) end;
  pred_raw := headcount_predicate(parsed, raw);

  -- The pieces of every bucket (of both periods: headcount_stats_pieces), then their UTC
  -- weeks, days, hours, quarters and minutes (units), and whether each is read from raw
  -- events (in the rollup path also hours before headcount_rollup_hours_from(), a week:
  -- older hours are not kept by the hour; minutes: null until decided below). Made once,
  -- here, as arrays that every query below reads (unnest): each query made them again
  -- before, and was planned again with them (about a third of a 40 ms call).
  select array_agg(q.period order by q.period, q.n, q.ps), array_agg(q.n order by q.period, q.n, q.ps),
         array_agg(q.bucket order by q.period, q.n, q.ps), array_agg(q.label order by q.period, q.n, q.ps),
         array_agg(case when q.level = 'quarter' and not (quarters and q.ps >= quarters_from) then 'minute' else q.level end
                   order by q.period, q.n, q.ps),
         array_agg(q.ps order by q.period, q.n, q.ps), array_agg(q.pe order by q.period, q.n, q.ps)
  into p_period, p_n, p_bucket, p_label, p_level, p_ps, p_pe
  from (
    select 0 as period, p.* from headcount_stats_pieces(from_time, to_time, g, step, bucket_count, timezone) p
    union all
    select 1 as period, p.* from headcount_stats_pieces(prev_from, from_time, g, step, bucket_count, timezone) p where comparing
  ) q;
  hours_from := case when path = 'rollup' then headcount_rollup_hours_from() else '-infinity' end;
  with piece_units as (
    select p.period, p.n, p.level, u.u, w.w,
           case when p.level = 'minute' then null
                when p.level = 'hour' and u.u < hours_from then true
                else u.u < raw_before or date_trunc('day', u.u, 'UTC') = any (raw_days) end as raw
    from unnest(p_period, p_n, p_level, p_ps, p_pe) p(period, n, level, ps, pe)
    cross join lateral (
      select case p.level when 'day' then interval '1 day' when 'hour' then interval '1 hour'
                          when 'quarter' then interval '15 minutes' else interval '1 minute' end
    ) w(w)
    cross join lateral generate_series(p.ps, p.pe - w.w, w.w) u(u)
  ),
  weeks as (
    -- The UTC weeks whose seven days a bucket reads from sketches, where the week is built
    -- (headcount_rollup_weeks): one week row instead of seven day rows.
    select pu.period, pu.n, date_trunc('week', pu.u) as u
    from piece_units pu
    where use_weeks and pu.level = 'day' and not pu.raw
    group by 1, 2, 3
    having count(*) = 7 and date_trunc('week', pu.u) in (select b.week from headcount_rollup_weeks b where b.site = headcount_stats.site)
  ),
  units as (
    select pu.* from piece_units pu
    where not (pu.level = 'day' and exists (select from weeks wk where wk.period = pu.period and wk.n = pu.n and wk.u = date_trunc('week', pu.u)))
    union all
    select wk.period, wk.n, 'week', wk.u, interval '7 days', false from weeks wk
  )
  select array_agg(un.period), array_agg(un.n), array_agg(un.level), array_agg(un.u), array_agg(un.w), array_agg(un.raw)
  into u_period, u_n, u_level, u_u, u_w, u_raw
  from units un;

  -- Anything before the first retained UTC day must be day sketches.
  select un.u, coalesce(un.raw, path <> 'events') and un.level = 'day' as raw_day
  into old
  from unnest(u_level, u_u, u_raw) un(level, u, raw)
  where (coalesce(un.raw, path <> 'events') or un.level not in ('day', 'week')) and un.u < raw_from
  order by un.u
  limit 1;
  if old.u is not null then
    raise exception '%',
      case
        when path = 'raw' then format(
          'no rollup holds %s (declare the property or combination with PATCH /v1/sites/%s), so this is answered from raw events, which are kept %s days: start the range at or after %s',
          array_to_string(needed, ' and '), site,
          (select extract(day from s.retention)::int from headcount_settings s), headcount_format_time(raw_from, 'UTC'))
        when path = 'rollup' and old.raw_day and old.u >= raw_before then format(
          'on %s %s had more than %s values (the rollup''s cap per day), so that day is answered from raw events, which are kept %s days: start the range at or after %s',
          old.u::date, rollup, (select s.rollup_max_values from headcount_settings s),
          (select extract(day from s.retention)::int from headcount_settings s), headcount_format_time(raw_from, 'UTC'))
        when path = 'rollup' and old.raw_day then format(
          '%s is rolled up from %s (the day after it was declared); before that only raw events answer, which are kept %s days: start the range at or after %s',
          rollup, headcount_format_time(raw_before, 'UTC'),
          (select extract(day from s.retention)::int from headcount_settings s), headcount_format_time(greatest(raw_from, raw_before), 'UTC'))
        else format(
          'the range reaches before %s, the start of the %s-day raw retention: before it only UTC day sketches are kept. Ask for granularity day, week, month or total with timezone UTC and from/to on UTC midnights, or start the range at or after %s',
          headcount_format_time(raw_from, 'UTC'),
          (select extract(day from s.retention)::int from headcount_settings s), headcount_format_time(raw_from, 'UTC'))
      end
      using errcode = '22023', column = case when comparing and old.u < from_time then 'compare' else 'from' end;
  end if;

  -- Minutes at the ends of buckets: in the events path from events_minutely's rows (one
  -- per minute, kind and page, and the parts of the last second: parts of the per-insert
  -- aggregates in docs/storage.md), unless reading the raw events is cheaper. A sketch costs
  -- ~25 µs to union whatever its size, a raw event ~2 µs to read, hash and add; an hour in
  -- Asia/Kolkata is two half UTC hours, all minutes: 48 such hours were 31,000 minute rows
  -- (0.9 s) against 120,000 raw events (npm run bench, 100,000 events a day).
  minutes_raw := path <> 'events';
  if not minutes_raw and 'minute' = any (p_level) then
    execute format($f$
      select
        coalesce(sum((select count(*) from events_minutely_parts m where m.site = $1 and m.bucket >= p.ps and m.bucket < p.pe)), 0)::bigint,
        coalesce(sum((select sum(t.events * extract(epoch from least(p.pe, t.bucket + interval '1 hour') - greatest(p.ps, t.bucket)) / 3600)
                      from totals_hourly%1$s t
                      where t.site = $1 and t.bucket >= date_trunc('hour', p.ps, 'UTC') and t.bucket < p.pe)), 0)::bigint
      from unnest($2, $3, $4) p(level, ps, pe)
      where p.level = 'minute'
    $f$, own)
    into minute_rows, raw_rows
    using site, p_level, p_ps, p_pe;
    minutes_raw := raw_rows < 10 * minute_rows and raw_rows <= max_raw_rows;
    raw_range_count := case when minutes_raw then 1 else 0 end;
  end if;
  u_raw := array(select coalesce(r.raw, minutes_raw) from unnest(u_raw) with ordinality r(raw, i) order by r.i);

  -- Raw scans are refused past max_raw_rows, estimated from the hours' event counts.
  if path <> 'events' then
    execute format($f$
      with raw_ranges as (
        select p.ps as rs, p.pe as re from unnest($2, $3, $4) p(level, ps, pe) where p.level = 'minute' and $5
        union all
        select un.u, un.u + un.w from unnest($6, $7, $8, $9) un(level, u, w, raw) where un.raw and un.level <> 'minute'
      )
      select coalesce(sum(t.events), 0)::bigint, (select count(*) from raw_ranges)
      from raw_ranges rr
      join totals_hourly%1$s t on t.site = $1 and t.bucket >= date_trunc('hour', rr.rs, 'UTC') and t.bucket < rr.re
    $f$, own)
    into raw_rows, raw_range_count
    using site, p_level, p_ps, p_pe, minutes_raw, u_level, u_u, u_w, u_raw;
    if raw_rows > max_raw_rows then
      raise exception 'this request reads about % raw events (at most % per request): %',
        raw_rows, max_raw_rows,
        case path
          when 'raw' then format('no rollup holds %s. Declare it as a property or combination (PATCH /v1/sites/%s), or ask for a shorter range', array_to_string(needed, ' and '), site)
          else format('%s is answered from raw events on %s. Ask for a shorter range, or granularity hour or coarser with from/to on whole UTC hours',
                      rollup, case when cardinality(raw_days) > 0 then 'days past its value cap'
                                   else format('minutes, hours before %s and undeclared days', headcount_format_time(headcount_rollup_hours_from(), 'UTC')) end)
        end
        using errcode = '54000', column = case when cardinality(grp) > 0 then 'group_by' else 'filter' end;
    end if;
  end if;

  -- So are rollups with too many values over the range (a property with a value per
  -- visitor, over a year): counted per day by the roller (headcount_rollup_days).
  if path = 'rollup' then
    select coalesce(sum(o.value_count), 0)::bigint into raw_rows
    from headcount_rollup_days o
    where o.site = headcount_stats.site and o.dims = rollup and not o.overflowed
      and o.day >= date_trunc('day', case when comparing then prev_from else from_time end, 'UTC') and o.day < to_time;
    if raw_rows > max_raw_rows then
      raise exception 'this request reads about % rollup rows of % (at most % per request): ask for a shorter range',
        raw_rows, rollup, max_raw_rows
        using errcode = '54000', column = case when cardinality(grp) > 0 then 'group_by' else 'filter' end;
    end if;
  end if;

  -- The sketches read by key: one lookup per level, whatever the number of buckets, and
  -- only of the levels some unit reads from sketches. The query is planned at every call
  -- (EXECUTE), and in timescaledb mode the views over the continuous aggregates are dear
  -- to plan (the stale hours' branch of each reads events_minutely, any chunk of it):
  -- naming all five, planning took 13-15 ms of a call, naming those read 0.7-8 ms
  -- (docs/benchmarks.md, "Planning only what is read").
  sketch_levels := array(select distinct l.level from unnest(u_level, u_raw) l(level, raw) where not l.raw);
  by_kind_page := jsonb_array_length(parsed) > 0 or cardinality(grp) > 0;
  found_sql := case path
    when 'events' then coalesce(nullif(concat_ws(' union all ',
      case when 'day' = any (sketch_levels) and by_kind_page then format($f$
      select 'day'::text as level, r.bucket, %1$s as grp, r.events, r.users
      from events_daily%3$s r, keys k
      where r.site = $1 and r.bucket = any (k.days) and %2$s
      $f$, grp_rel, pred_rel, own) end,
      case when 'day' = any (sketch_levels) and not by_kind_page then format($f$
      select 'day'::text as level, r.bucket, '{}'::text[] as grp, r.events, r.users
      from totals_daily%1$s r, keys k
      where r.site = $1 and r.bucket = any (k.days)
      $f$, own) end,
      case when 'hour' = any (sketch_levels) and by_kind_page then format($f$
      select 'hour'::text as level, r.bucket, %1$s as grp, r.events, r.users
      from events_hourly%3$s r, keys k
      where r.site = $1 and r.bucket = any (k.hours) and %2$s
      $f$, grp_rel, pred_rel, own) end,
      case when 'hour' = any (sketch_levels) and not by_kind_page then format($f$
      select 'hour'::text as level, r.bucket, '{}'::text[] as grp, r.events, r.users
      from totals_hourly%1$s r, keys k
      where r.site = $1 and r.bucket = any (k.hours)
      $f$, own) end,
      case when 'minute' = any (sketch_levels) then format($f$
      select 'minute'::text as level, r.bucket, %1$s as grp, r.events, r.users
      from events_minutely_parts r, keys k
      where r.site = $1 and r.bucket = any (k.minutes) and %2$s
      $f$, grp_rel, pred_rel) end,
      case when quarters and 'quarter' = any (sketch_levels) then format($f$
      select 'quarter'::text as level, r.bucket, %1$s as grp, r.events, r.users
      from kinds_15m r, keys k
      where r.site = $1 and r.bucket = any (k.quarters) and %3$s and %2$s
      $f$, grp_rel, pred_rel, every_kind) end
      ), ''), $f$
      select null::text as level, null::timestamptz as bucket, null::text[] as grp, null::bigint as events, null::hll as users
      where false
      $f$)
    when 'rollup' then format($f$
      select 'day'::text as level, r.bucket, %1$s as grp, r.events, r.users
      from dimensions_daily r, keys k
      where r.site = $1 and r.dims = $15 and r.bucket = any (k.days) and %3$s and %2$s
      union all
      select 'hour', r.bucket, %1$s, r.events, r.users
      from dimensions_hourly r, keys k
      where r.site = $1 and r.dims = $15 and r.bucket = any (k.hours) and %3$s and %2$s
      %4$s
      $f$, grp_rel, pred_rel, every_kind,
      case when use_weeks then format($k$
      union all
      select 'week', r.bucket, %1$s, r.events, r.users
      from dimensions_weekly r, keys k
      where r.site = $1 and r.dims = $15 and r.bucket = any (k.weeks) and %2$s
      $k$, grp_rel, pred_rel) else '' end)
    else $f$
      select null::text as level, null::timestamptz as bucket, null::text[] as grp, null::bigint as events, null::hll as users
      where false
      $f$
  end;
  if quarters then
    -- Events still queued for kinds_15m, in its quarter hours.
    extra_sql := format($f$
      union all
      select un.period, un.n, %1$s, sum(e.weight)::bigint, hll_add_agg(e.user_hash, p.log2m, p.regwidth, p.expthresh, p.sparseon)
      from headcount_pending e
      join units un on un.level = 'quarter' and un.u = date_bin('15 minutes', e.time, timestamptz 'epoch') and not un.raw,
      headcount_sketch_parameters() p
      where e.site = $1 and %2$s
      group by 1, 2, 3
      $f$, grp_raw, pred_raw);
  end if;
  if path = 'rollup' then
    -- Events still queued for the rollups, in the units the rollups answer.
    extra_sql := format($f$
      union all
      select un.period, un.n, %1$s, sum(e.weight)::bigint, hll_add_agg(e.user_hash, p.log2m, p.regwidth, p.expthresh, p.sparseon)
      from headcount_pending e
      cross join lateral (values ('week', date_trunc('week', e.time, 'UTC')), ('day', date_trunc('day', e.time, 'UTC')),
                                 ('hour', date_trunc('hour', e.time, 'UTC'))) l(level, u)
      join units un on un.level = l.level and un.u = l.u and not un.raw,
      headcount_sketch_parameters() p
      where e.site = $1 and %2$s
      group by 1, 2, 3
      $f$, grp_raw, pred_raw);
  end if;
  -- Raw events only where a range needs them, each range read by its own index scan of
  -- events (a lateral per range). Joined as a whole, the planner scanned every chunk of
  -- the 60 days for the filter first (5.7 s of a 5.9 s request in npm run bench); and a
  -- plain lateral it pulls up into that same join: "offset 0" keeps the subquery apart,
  -- run once per range with its bounds as parameters (610 ms -> see docs/benchmarks.md).
  if minutes_raw and raw_range_count > 0 then
    extra_sql := extra_sql || format($f$
      union all
      select rr.period, rr.n, %3$s, sum(e.weight)::bigint,
             hll_add_agg(hll_hash_text(e.user_id, p.seed), p.log2m, p.regwidth, p.expthresh, p.sparseon)
      from raw_ranges rr
      cross join lateral (
        select %1$s e.weight, e.user_id
        from events e
        where e.site = $1 and e.time >= rr.rs and e.time < rr.re and %2$s
        offset 0
      ) e,
      headcount_sketch_parameters() p
      group by rr.period, rr.n%4$s
      $f$, grp_raw_cols, pred_raw, grp_raw_arr, grp_raw_keys);
  end if;

  -- groups, then per_bucket. Without group_by: one group ({}), its rows unioned per
  -- bucket and period as they come. With it: the top $16 groups over the range by
  -- distinct users (then events, then values), and only their rows unioned per bucket
  -- (with one bucket, a group's union over the range is its answer already). A group's
  -- users over the range are the cardinality of one union of its rows of period 0
  -- (before, its unions per bucket were unioned again: every sketch unpacked and packed
  -- twice). Only the groups that can be among the top $16 are unioned: a group's events
  -- over the range bound its users from above (every event has a weight of 1 or more;
  -- an estimate's standard error is 0.81 %, so a tenth more is 12 of them), and the
  -- users of the $16 groups with the most events bound the $16th largest from below: a
  -- group whose events, a tenth more, are under that cannot make the top $16, and its
  -- sketches are never unioned (docs/storage.md, "Top groups"). An aggregate reading a
  -- union's cardinality without packing it (sfunc hll_union_trans, finalfunc
  -- hll_card_unpacked, both of hll) would rank cheaper still (57 against 140 us a dense
  -- group, 0.60 against 0.66 of the time before on group_by=country 30 d), but its state
  -- is of type internal, which only a superuser may declare: the service's role migrates.
  if cardinality(grp) = 0 then
    per_bucket_sql := $f$
  groups as (
    select '{}'::text[] as grp, 1::bigint as rank
  ),
  per_bucket as (
    select r.period, r.n, r.grp, sum(r.events)::bigint as events, hll_union_agg(r.users) as users
    from rows r
    group by r.period, r.n, r.grp
  ),$f$;
  else
    per_bucket_sql := $f$
  ranked as (
    -- Each row with its group's events over the range (period 0) and the group's rank by
    -- them: windows, not joins with the groups (a join planned from a CTE's guess of one
    -- row compared every row with every group: 13 ms for 60 countries).
    select g.*, dense_rank() over (order by g.range_events desc, g.grp) as rank
    from (
      select r.*, coalesce(sum(r.events) filter (where r.period = 0) over (partition by r.grp), 0) as range_events
      from rows r
    ) g
  ),
  seed_groups as (
    -- The $16 groups with the most events: each with its events, its union over the range
    -- and that union's cardinality (one aggregate: the same call twice is computed once),
    -- and the number of its one bucket.
    select r.grp, max(r.range_events)::bigint as events, max(r.n) filter (where r.period = 0) as n,
           hll_union_agg(r.users) filter (where r.period = 0) as range_users,
           hll_cardinality(hll_union_agg(r.users) filter (where r.period = 0)) as users
    from ranked r
    where r.rank <= $16
    group by r.grp
  ),
  threshold as materialized (
    -- The least users among them (0 when there are fewer groups). Materialized: inlined,
    -- it was computed again for every row it was compared with.
    select case when count(*) < $16 then 0 else min(coalesce(sg.users, 0)) end as users
    from seed_groups sg
  ),
  candidates as (
    -- They, and the groups whose events, a tenth more, reach that threshold.
    select * from seed_groups
    union all
    select r.grp, max(r.range_events)::bigint, max(r.n) filter (where r.period = 0),
           hll_union_agg(r.users) filter (where r.period = 0),
           hll_cardinality(hll_union_agg(r.users) filter (where r.period = 0))
    from ranked r, threshold t
    where r.rank > $16 and r.range_events * 1.1 >= t.users
    group by r.grp
  ),
  groups as (
    select t.*, row_number() over (order by t.users desc, t.events desc, t.grp) as rank
    from (
      select c.grp, c.n, c.events, c.range_users, round(c.users) as users
      from candidates c
      where c.users is not null
      order by 5 desc, 3 desc, 1
      limit $16
    ) t
  ),
  per_bucket as (
    -- One bucket ($6 = 1): a group's range is its bucket, unioned already.
    select 0 as period, gr.n, gr.grp, gr.events, gr.range_users as users
    from groups gr
    where $6 = 1
    union all
    select r.period, r.n, r.grp, sum(r.events)::bigint as events, hll_union_agg(r.users) as users
    from ranked r
    where r.grp in (select gr.grp from groups gr) and ($6 > 1 or r.period = 1)
    group by r.period, r.n, r.grp
  ),$f$;
  end if;

  -- EXECUTE plans it with these values, so that TimescaleDB excludes chunks.
  return query execute format($q$
  with pieces as (
    select * from unnest($19::int[], $20::bigint[], $21::timestamptz[], $22::text[], $23::text[], $24::timestamptz[], $25::timestamptz[])
      p(period, n, bucket, label, level, ps, pe)
  ),
  units as (
    select * from unnest($26::int[], $27::bigint[], $28::text[], $29::timestamptz[], $30::interval[], $31::boolean[])
      u(period, n, level, u, w, raw)
  ),
  raw_ranges as (
    select p.period, p.n, p.ps as rs, p.pe as re from pieces p where p.level = 'minute' and $10
    union all
    select un.period, un.n, un.u, un.u + un.w from units un where un.raw and un.level <> 'minute'
  ),
  -- In the events path found is often one relation (only the levels read are named):
  -- inlined, it was joined to units as the inner side of a nested loop, the view over a
  -- continuous aggregate run again for every unit (with 243 stale hours, 1.1-1.8 s
  -- instead of 50 ms; test/v1/stats-modes.test.ts timed out). There it is materialized,
  -- and so is keys; the rollup path names two relations or more and is planned as before.
  keys as materialized (
    select array_agg(u) filter (where level = 'week') as weeks,
           array_agg(u) filter (where level = 'day' and not raw) as days,
           array_agg(u) filter (where level = 'hour' and not raw) as hours,
           array_agg(u) filter (where level = 'quarter' and not raw) as quarters,
           array_agg(u) filter (where level = 'minute' and not raw) as minutes
    from units
  ),
  found as %4$s (%1$s),
  rows as (
    select un.period, un.n, f.grp, f.events, f.users
    from units un
    join found f on f.level = un.level and f.bucket = un.u
    where not un.raw
    %2$s
  ),
  %3$s
  buckets as (
    select distinct p.n, p.bucket, p.label from pieces p where p.period = 0
  )
  select b.bucket,
         b.label,
         gr.grp[array_position($18, 'kind')],
         gr.grp[array_position($18, 'page')],
         case when $17 > 0 then gr.grp end,
         coalesce(round(hll_cardinality(pb.users)), 0)::bigint,
         coalesce(pb.events, 0)::bigint,
         coalesce(hll_type(pb.users) > 2, false) or coalesce(hll_type(pp.users) > 2, false),
         case when $9 then coalesce(round(hll_cardinality(pp.users)), 0)::bigint end,
         case when $9 then coalesce(pp.events, 0)::bigint end
  from buckets b
  cross join groups gr
  left join per_bucket pb on pb.period = 0 and pb.n = b.n and pb.grp is not distinct from gr.grp
  left join per_bucket pp on pp.period = 1 and pp.n = b.n and pp.grp is not distinct from gr.grp
  order by b.n, gr.rank
  $q$, found_sql, extra_sql, per_bucket_sql, case when path = 'events' then 'materialized' else 'not materialized' end)
  -- $14 is read by no query now (found names the relations by_kind_page chooses); it
  -- keeps its place so that the parameters after it keep their numbers.
  using site, from_time, to_time, g, step, bucket_count, timezone, prev_from, comparing,
        minutes_raw, raw_before, raw_days, raw_from,
        path = 'events' and by_kind_page,
        rollup, group_limit, cardinality(grp), grp,
        p_period, p_n, p_bucket, p_label, p_level, p_ps, p_pe,
        u_period, u_n, u_level, u_u, u_w, u_raw;
  -- Its plans read the watermarks of this snapshot, or the answer is refused (40001).
  perform headcount_check_snapshot();
end
$$;

comment on function headcount_stats(text, timestamptz, timestamptz, text, text, text[], text[], text, integer, text[], text, bigint) is
  'headcount: distinct users and events of a site per local bucket of [from_time, to_time) (GET /v1/stats). granularity minute|hour|day|week|month|total; timezone an IANA name or ±HH:MM; kinds/pages and filters (country==DE|FR, page^=/blog/, props.plan!=free) filter; group_by one or two dimensions (country,device) keeps the top group_limit by users; compare previous_period adds the period before. users is a union of sketches and raw events, exact while approximate is false';
