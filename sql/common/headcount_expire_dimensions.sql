-- Deletes what the roller keeps past its retention: the dimension rollups' hours before
-- headcount_rollup_hours_from() (a week), their days and value counts with the day
-- sketches (headcount_settings.sketch_retention) and their weeks that start before
-- those, quarter hours (kinds_15m) with the raw events (headcount_settings.retention).
-- The roller calls it about once an hour (src/db/roller.ts).
-- Returns how many rows it deleted.
create or replace function headcount_expire_dimensions()
returns bigint
language plpgsql
set timezone = 'UTC'
as $$
declare
  sketch_from timestamptz;
  hours bigint;
  days bigint;
  counts bigint;
  quarters bigint;
  weeks bigint;
begin
  select date_trunc('day', now() - s.sketch_retention) into sketch_from from headcount_settings s;
  delete from dimensions_hourly where bucket < headcount_rollup_hours_from();
  get diagnostics hours = row_count;
  delete from dimensions_daily where bucket < sketch_from;
  get diagnostics days = row_count;
  delete from headcount_rollup_days where day < sketch_from;
  get diagnostics counts = row_count;
  -- A week that starts before the first kept day can no longer be read whole.
  delete from dimensions_weekly where bucket < sketch_from;
  get diagnostics weeks = row_count;
  delete from headcount_rollup_weeks where week < sketch_from;
  delete from kinds_15m where bucket < (select date_trunc('day', now() - s.retention) from headcount_settings s);
  get diagnostics quarters = row_count;
  return hours + days + counts + weeks + quarters;
end
$$;
