-- The first UTC hour the dimension rollups keep by the hour (dimensions_hourly): the
-- UTC midnight 7 days back (or the raw events' retention, when shorter). Older hours of
-- a dimension are read from raw events; their days stay in dimensions_daily.
--
-- Why 7 days and not as long as the raw events: at bench volume the hours were 140 % of
-- the raw events' size (a row per site, dimension, kind, value and hour, mostly holding
-- a few users: the row and its index entry cost more than the sketch), and an old hour
-- is needed only at the ends of a range that is not on UTC days (a +05:30 day, a rolling
-- 30 days), where reading the raw events of part of one day is not slower than a union
-- of that part's hour sketches (docs/storage.md, "Dimensions").
--
-- A constant of this release, not a setting: the roller writes no hour before it and the
-- expiry deletes them, so moving it back could not bring them back; reads, the roller and
-- the expiry all ask this function.
create or replace function headcount_rollup_hours_from()
returns timestamptz
language sql stable
as $$
  select date_trunc('day', now() - least(s.retention, interval '7 days'), 'UTC') from headcount_settings s
$$;
