-- Every kind and page of a site per UTC day in one sketch, over totals_daily_cagg; a day
-- holding a stale hour is answered from totals_hourly, as in events_daily.
create or replace view totals_daily as
select a.*
from totals_daily_cagg a
where not exists (select from headcount_stale_hours s where s.site = a.site and date_trunc('day', s.hour, 'UTC') = a.bucket)
union all
select s.site, s.bucket, f.events, f.users
from (select distinct site, date_trunc('day', s.hour, 'UTC') as bucket from headcount_stale_hours s) s
cross join lateral (
  select sum(events)::bigint as events, hll_union_agg(users) as users
  from totals_hourly
  where site = s.site and bucket >= s.bucket and bucket < s.bucket + interval '24 hours'
) f;
