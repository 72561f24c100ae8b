-- v0.1.0's relation of the users of every kind per day, kept for its readers: the
-- sketches of totals_daily (a view in timescaledb mode, a table in postgres mode).
create or replace view users_daily as
select site, bucket, users
from totals_daily;

comment on view users_daily is 'headcount: v0.1.0''s name for the users of totals_daily';
