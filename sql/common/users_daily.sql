-- v0.1.0's relation of the users of every kind per day, kept for its readers: the
-- sketches of totals_daily (a view in timescaledb mode, a table of parts in postgres and
-- citus modes), one row per site and day as v0.1.0 had it.
create or replace view users_daily as
select site, bucket, hll_union_agg(users) as users
from totals_daily
group by site, bucket;

comment on view users_daily is 'headcount: v0.1.0''s name for the users of totals_daily, one row per site and day';
