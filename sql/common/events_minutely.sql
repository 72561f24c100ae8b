-- The documented relation of minutes: one row per site, minute, kind and page, the union
-- of the key's rows in events_minutely_parts (part 0 and the parts inserts appended since
-- the last fold: headcount_apply_events, headcount_fold_events). The service reads the
-- parts themselves (headcount_stats, the stale hours of the timescaledb views), unioning
-- them with the rest of what it reads.
create or replace view events_minutely as
select site, bucket, kind, page, sum(events)::bigint as events, hll_union_agg(users) as users
from events_minutely_parts
group by site, bucket, kind, page;

comment on view events_minutely is 'headcount: per site, minute, kind and page, the event count and an hll sketch of the users (the union of the key''s rows in events_minutely_parts)';
