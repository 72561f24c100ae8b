-- The roller: moves up to max_rows queued events (headcount_pending) into the dimension
-- rollups in one transaction (headcount_roll_up_batch), so that every read sees each
-- event either queued or rolled up, never both, never neither; then folds parts
-- (headcount_fold_parts) and builds ended weeks (headcount_build_weeks). Returns how many
-- it moved (0: nothing queued, or another session is rolling up). The service calls it in
-- a loop (src/db/roller.ts); psql may too. citus mode moves site by site
-- (sql/citus/headcount_roll_up_batch.sql).
create or replace function headcount_roll_up(max_rows integer default 20000)
returns integer
language plpgsql
as $$
declare
  moved integer;
begin
  -- One roller at a time: two would upsert the same rollup rows and day counts.
  if not pg_try_advisory_xact_lock(1751937123) then
    return 0;
  end if;
  moved := headcount_roll_up_batch(max_rows);
  perform headcount_fold_parts();
  perform headcount_build_weeks();
  return moved;
end
$$;

comment on function headcount_roll_up(integer) is
  'headcount: moves up to max_rows queued events (headcount_pending) into dimensions_hourly, dimensions_daily and kinds_15m in one transaction, as parts of its own (folded by headcount_fold_parts); returns how many (0 when none, or another session is rolling up)';
