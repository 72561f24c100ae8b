-- postgres and citus modes: the documented relation of days, one row per site, UTC day,
-- kind and page, the union of the key's rows in events_daily_parts (part 0 and the parts inserts
-- appended since the last fold), as events_minutely. headcount_stats reads the parts.
create or replace view events_daily as
select site, bucket, kind, page, sum(events)::bigint as events, hll_union_agg(users) as users
from events_daily_parts
group by site, bucket, kind, page;

comment on view events_daily is 'headcount: per site, UTC day, kind and page, the event count and an hll sketch of the users (the union of the key''s rows in events_daily_parts)';
