-- Folds the parts that inserts append (headcount_apply_events: a row per transaction and
-- key, part = its transaction id, a sketch of that transaction's events) into each key's
-- row of part 0: events_minutely_parts in timescaledb mode; in postgres and citus modes
-- also events_hourly_parts, events_daily_parts, totals_hourly_parts and
-- totals_daily_parts (the tables under the views of those names). So a busy key's sketch,
-- 10 KB once dense, is rewritten once per fold instead of once per insert, while the key
-- keeps few rows to union. The roller calls it every second (src/db/roller.ts), the
-- refresher before it moves its watermark (src/db/refresher.ts); psql may too.
--
-- A fold leaves every key's events and users as they were, so it needs no lock against
-- inserts or reads, and in timescaledb mode none against the refresher: a continuous
-- aggregate materialized from the parts or from part 0 holds the same row. But in
-- timescaledb mode it folds only the minutes from the watermark on
-- (headcount_refresh_state.through: the invalidation threshold, or up to 10 minutes
-- before it while the refresher moves both): a fold below it is logged by TimescaleDB as
-- an invalidation, and one of a day older than the retention window (a backfill's parts)
-- kept that day's stale mark past its refresh; once retention had dropped the day's
-- minutes and hours, the next refresh of the day rebuilt its day sketch from nothing
-- (test/v1/stats.test.ts, "answers a year of day sketches after the raw events are
-- gone", failed so in a CI run). Parts of back-dated inserts below the watermark stay
-- parts: reads union them like any other.
-- Returns how many rows of part 0 it wrote (0: nothing to fold, or another session is
-- folding).
create or replace function headcount_fold_events() returns bigint
language plpgsql
as $$
declare
  total bigint := 0;
  t record;
  since timestamptz := '-infinity';
  timescaledb boolean := (select s.storage_mode = 'timescaledb' from headcount_settings s);
begin
  -- One fold at a time: two would wait on each other's rows of part 0.
  if not pg_try_advisory_xact_lock(1751475824) then
    return 0;
  end if;
  if timescaledb then
    -- headcount_refresh_state is timescaledb mode's: named only there.
    execute 'select through from headcount_refresh_state' into since;
  end if;
  for t in
    select v.name, v.key
    from (values ('events_minutely', 'site, bucket, kind, page', true),
                 ('events_hourly', 'site, bucket, kind, page', false),
                 ('events_daily', 'site, bucket, kind, page', false),
                 ('totals_hourly', 'site, bucket', false),
                 ('totals_daily', 'site, bucket', false)) v(name, key, every_mode)
    where v.every_mode or not timescaledb
  loop
    total := total + headcount_fold_table(t.name || '_parts', t.key, since);
  end loop;
  return total;
end
$$;

comment on function headcount_fold_events() is
  'headcount: folds the parts inserts append to events_minutely_parts (and in postgres and citus modes to events_hourly_parts, events_daily_parts, totals_hourly_parts, totals_daily_parts) into part 0; returns how many keys it wrote';
