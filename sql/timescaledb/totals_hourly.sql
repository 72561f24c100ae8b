-- Every kind and page of a site per hour in one sketch, over totals_hourly_cagg; a stale
-- hour is answered from events_minutely, as in events_hourly.
create or replace view totals_hourly as
select a.*
from totals_hourly_cagg a
where not exists (select from headcount_stale_hours s where s.site = a.site and s.hour = a.bucket)
union all
select s.site, s.bucket, f.events, f.users
from (select distinct site, s.hour as bucket from headcount_stale_hours s) s
cross join lateral (
  select sum(events)::bigint as events, hll_union_agg(users) as users
  from events_minutely_parts
  where site = s.site and bucket >= s.bucket and bucket < s.bucket + interval '1 hour'
) f;
