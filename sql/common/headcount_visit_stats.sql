-- GET /v1/stats' visit metrics (metrics=visits,bounce_rate,visit_duration,
-- pageviews_per_visit) as a SQL function, read from headcount_visits, which the trigger
-- keeps in the inserting transaction (read-your-writes). docs/storage.md, "Visits".
--
--  - A visit counts in the local bucket where it starts, and in a range when it starts
--    in it: visits = how many started; the rest are figures of those visits.
--  - bounce_rate = the share of them with one page view (events of kind pageview,
--    weights summed) and no other event; null without visits.
--  - visit_duration_mean and _median: seconds from the first event to the last (0 for a
--    visit of one instant), the median exact (percentile_cont over the durations).
--  - pageviews_per_visit = their page views / their visits.
--  - Filters and group_by name what a visit starts with: its first event's referrer,
--    utm_*, country, device, browser and os, its entry_page and its exit_page (the page
--    of its last event). kind, page and props are refused (22023): a visit has many.
--
-- Same buckets, arguments and errors as headcount_stats (headcount_check_stats_arguments,
-- headcount_stats_pieces); group_by keeps the top group_limit groups by visits.
create or replace function headcount_visit_stats(
  site text,
  from_time timestamptz,
  to_time timestamptz,
  granularity text default 'total',
  timezone text default 'UTC',
  group_by text default null,
  group_limit integer default 10,
  filters text[] default null,
  compare text default null
)
returns table (
  bucket timestamptz,
  bucket_label text,
  group_values text[],
  visits bigint,
  bounce_rate double precision,
  visit_duration_mean double precision,
  visit_duration_median double precision,
  pageviews_per_visit double precision,
  previous_visits bigint,
  previous_bounce_rate double precision,
  previous_visit_duration_mean double precision,
  previous_visit_duration_median double precision,
  previous_pageviews_per_visit double precision
)
language plpgsql stable
set timezone = 'UTC'
set jit = off
as $$
#variable_conflict use_column
declare
  g text;
  step interval;
  bucket_count bigint;
  grp text[] := '{}';
  parsed jsonb;
  cols jsonb;
  bad text;
  grp_sql text;
begin
  select a.g, a.step, a.bucket_count into g, step, bucket_count
  from headcount_check_stats_arguments(site, from_time, to_time, granularity, group_limit, compare) a;
  perform headcount_check_bucket_count(g, bucket_count);
  grp := headcount_parse_group_by(group_by);
  perform headcount_zone(timezone);
  parsed := headcount_parse_filters(filters);

  cols := jsonb_build_object('entry_page', 'v.entry_page', 'exit_page', 'v.exit_page') ||
    (select jsonb_object_agg(d, format('v.%I', d)) from unnest(headcount_dimensions()) d);
  select x.d into bad
  from (
    select jsonb_array_elements(parsed) ->> 'dimension' as d, 'filter' as arg
    union all
    select unnest(grp), 'group_by'
  ) x
  where not cols ? x.d
  limit 1;
  if bad is not null then
    raise exception 'visits are filtered and grouped by what they start with (entry_page, exit_page, %), not %: a visit has many',
      array_to_string(headcount_dimensions(), ', '), bad
      using errcode = '22023', column = case when bad = any (grp) then 'group_by' else 'filter' end;
  end if;
  grp_sql := case when cardinality(grp) = 0 then '''{}''::text[]'
    else format('array[%s]::text[]', (select string_agg(cols ->> x, ', ' order by i) from unnest(grp) with ordinality t(x, i))) end;

  return query execute format($q$
  with pieces as (
    select 0 as period, p.* from headcount_stats_pieces($2, $3, $4, $5, $6, $7) p
    union all
    select 1 as period, p.* from headcount_stats_pieces($2 - ($3 - $2), $2, $4, $5, $6, $7) p where $8
  ),
  spans as (
    -- A bucket's pieces tile [its start, its end): one range of start times.
    select p.period, p.n, min(p.ps) as s, max(p.pe) as e from pieces p group by 1, 2
  ),
  chosen as (
    -- d_exact: numeric, so that the mean does not depend on the order the rows come in
    -- (a double precision sum does: citus mode read a shard's rows in another order than
    -- postgres mode and answered 140.0001388888889 for 140.00013888888893).
    select sp.period, sp.n, %1$s as grp, v.pageviews, v.others, extract(epoch from v.ended - v.started) as d_exact,
           extract(epoch from v.ended - v.started)::double precision as d
    from spans sp
    join headcount_visits v on v.site = $1 and v.started >= sp.s and v.started < sp.e
    where %2$s
  ),
  per_bucket as (
    select c.period, c.n, c.grp, count(*) as visits,
           count(*) filter (where c.pageviews = 1 and c.others = 0)::double precision / count(*) as bounce_rate,
           avg(c.d_exact)::double precision as mean, percentile_cont(0.5) within group (order by c.d) as median,
           sum(c.pageviews)::double precision / count(*) as per_visit
    from chosen c
    group by 1, 2, 3
  ),
  buckets as (
    select distinct p.n, p.bucket, p.label from pieces p where p.period = 0
  ),
  groups as (
    select '{}'::text[] as grp, 1::bigint as rank
    where $10 = 0
    union all
    select t.grp, row_number() over (order by t.visits desc, t.grp)
    from (
      select pb.grp, sum(pb.visits) as visits
      from per_bucket pb
      where $10 > 0 and pb.period = 0
      group by pb.grp
      order by 2 desc, 1
      limit $9
    ) t
  )
  select b.bucket, b.label, case when $10 > 0 then gr.grp end,
         coalesce(pb.visits, 0)::bigint, pb.bounce_rate, pb.mean, pb.median, pb.per_visit,
         case when $8 then coalesce(pp.visits, 0)::bigint end, pp.bounce_rate, pp.mean, pp.median, pp.per_visit
  from buckets b
  cross join groups gr
  left join per_bucket pb on pb.period = 0 and pb.n = b.n and pb.grp is not distinct from gr.grp
  left join per_bucket pp on pp.period = 1 and pp.n = b.n and pp.grp is not distinct from gr.grp
  order by b.n, gr.rank
  $q$, grp_sql, headcount_predicate(parsed, cols))
  using site, from_time, to_time, g, step, bucket_count, timezone, compare is not null, group_limit, cardinality(grp);
end
$$;

comment on function headcount_visit_stats(text, timestamptz, timestamptz, text, text, text, integer, text[], text) is
  'headcount: visits of a site per local bucket of [from_time, to_time) (GET /v1/stats metrics visits, bounce_rate, visit_duration, pageviews_per_visit): a visit counts in the bucket where it starts; filters and group_by name what it starts with (referrer, utm_*, country, device, browser, os, source, entry_page) or exit_page. Exact.';
