-- postgres and citus modes: every kind and page of a site per UTC day in one sketch, one
-- row per site and day, the union of the key's rows in totals_daily_parts (part 0 and the parts
-- inserts appended since the last fold), as events_minutely. headcount_stats reads the parts.
create or replace view totals_daily as
select site, bucket, sum(events)::bigint as events, hll_union_agg(users) as users
from totals_daily_parts
group by site, bucket;

comment on view totals_daily is 'headcount: per site and UTC day, the event count and an hll sketch of the users of every kind and page (the union of the key''s rows in totals_daily_parts)';
