-- The documented relation over events_daily_cagg: a day holding a stale hour is
-- aggregated afresh from events_hourly (itself fresh), as in events_hourly. Days are UTC
-- days whatever the session's TimeZone: the fresh part spans the 24 hours after the UTC
-- midnight (timestamptz + interval '1 day' would follow the session's zone, 23 or 25
-- hours on a DST day).
create or replace view events_daily as
select a.*
from events_daily_cagg a
where not exists (select from headcount_stale_hours s where s.site = a.site and date_trunc('day', s.hour, 'UTC') = a.bucket)
union all
select s.site, s.bucket, f.kind, f.page, f.events, f.users
from (select distinct site, date_trunc('day', s.hour, 'UTC') as bucket from headcount_stale_hours s) s
cross join lateral (
  select kind, page, sum(events)::bigint as events, hll_union_agg(users) as users
  from events_hourly
  where site = s.site and bucket >= s.bucket and bucket < s.bucket + interval '24 hours'
  group by kind, page
) f;
