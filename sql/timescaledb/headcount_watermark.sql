-- Where a continuous aggregate's materialized part ends; rows at or after it are
-- aggregated at query time. Back-dated rows below it wait for a refresh (and are
-- answered meanwhile through headcount_stale_hours: see events_hourly).
create or replace function headcount_watermark(aggregate regclass) returns timestamptz
language sql stable
as $$
  select _timescaledb_functions.to_timestamp(_timescaledb_functions.cagg_watermark(ca.mat_hypertable_id))
  from _timescaledb_catalog.continuous_agg ca
  where format('%I.%I', ca.user_view_schema, ca.user_view_name)::regclass = aggregate
$$;
