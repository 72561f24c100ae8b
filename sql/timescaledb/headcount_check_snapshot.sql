-- Raises serialization_failure (40001) when a continuous aggregate's watermark moved
-- after the snapshot of the calling statement: headcount_stats calls it once it has read.
--
-- A function that is not volatile runs its statements on the snapshot of the statement
-- that called it, but plans each of them when it gets to it, later; and TimescaleDB reads
-- a watermark while planning, from the newest snapshot under READ COMMITTED. A refresher
-- pass that committed in between moved the watermark over rows the older snapshot does
-- not see materialized: those rows were read from neither side of it, and the answer
-- lacked them (issue 17; test/read/stats-snapshot-race.test.ts). Equal watermarks here,
-- after the reads were planned, mean none moved since the snapshot: the plans read the
-- snapshot's. Under REPEATABLE READ, as the service reads (src/db/deadline.ts), every
-- read of a watermark is the transaction's snapshot's, and this never raises.
create or replace function headcount_check_snapshot() returns void
language plpgsql stable
as $$
begin
  if exists (
    select
    from _timescaledb_catalog.continuous_agg c
    join _timescaledb_catalog.continuous_aggs_watermark w on w.mat_hypertable_id = c.mat_hypertable_id
    where c.user_view_schema = current_schema()
      and w.watermark is distinct from _timescaledb_functions.cagg_watermark(c.mat_hypertable_id)
  ) then
    raise exception 'the continuous aggregates were refreshed while this read ran, so its answer could lack what the refresh materialized: run it again, or in a repeatable read transaction'
      using errcode = '40001';
  end if;
end
$$;
