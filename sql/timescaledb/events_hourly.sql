-- The documented relation over the continuous aggregate events_hourly_cagg: its
-- materialized rows, except in an hour marked stale (events written below its
-- watermark, not yet re-materialized), which is aggregated afresh from events_minutely
-- (kept by the insert trigger, so always current). The join is an equality (hashable)
-- and the fresh part a lateral per stale hour (an index range scan of events_minutely),
-- so a burst of back-dated hours costs little whatever the plan.
create or replace view events_hourly as
select a.*
from events_hourly_cagg a
where not exists (select from headcount_stale_hours s where s.site = a.site and s.hour = a.bucket)
union all
select s.site, s.bucket, f.kind, f.page, f.events, f.users
from (select distinct site, s.hour as bucket from headcount_stale_hours s) s
cross join lateral (
  select kind, page, sum(events)::bigint as events, hll_union_agg(users) as users
  from events_minutely_parts
  where site = s.site and bucket >= s.bucket and bucket < s.bucket + interval '1 hour'
  group by kind, page
) f;
