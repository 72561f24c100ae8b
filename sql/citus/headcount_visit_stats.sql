-- citus mode: visit metrics are not available yet: headcount_visits is not kept
-- (headcount_track_visits). Refused with SQLSTATE 22023 naming metrics, which GET
-- /v1/stats answers as a 400 naming that parameter, rather than answered from an empty
-- table. Same signature as the other modes' (sql/common/headcount_visit_stats.sql).
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
as $$
begin
  raise exception 'visit metrics (visits, bounce_rate, visit_duration, pageviews_per_visit) are not available in citus storage mode yet: ask for users and events'
    using errcode = '22023', column = 'metrics';
end
$$;
