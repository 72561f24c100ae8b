-- timescaledb mode: the trigger of events (events_aggregate) keeps events_minutely in
-- the transaction of each insert, so the current minute is always exact; hours and days
-- are continuous aggregates above it. A row written below the finest aggregate's
-- watermark (headcount_refresh_state.through) marks its hour in headcount_stale_hours,
-- and the hour and day views answer that hour afresh until the refresher
-- (src/db/refresher.ts) re-materializes it.
create or replace function headcount_apply_events() returns trigger
language plpgsql
as $$
begin
  insert into events_minutely (site, bucket, kind, page, events, users)
  select site, date_trunc('minute', time, 'UTC'), kind, page, sum(weight),
         hll_add_agg(hll_hash_text(user_id, p.seed), p.log2m, p.regwidth, p.expthresh, p.sparseon)
  from new_events, headcount_sketch_parameters() p
  group by 1, 2, 3, 4
  -- Concurrent batches lock the rows they update in one order: no deadlock.
  order by 1, 2, 3, 4
  on conflict (site, bucket, kind, page) do update
  set events = events_minutely.events + excluded.events,
      users = hll_union(events_minutely.users, excluded.users);

  -- This runs after the upsert above, which holds a lock on events_minutely that the
  -- refresher's move of "through" waits for (src/db/refresher.ts); and plpgsql takes a
  -- new snapshot per statement. So "through" cannot move between this read and the
  -- commit: a row is either marked here or lies above every watermark until committed.
  insert into headcount_stale_hours (site, hour, version)
  select site, hour, nextval('headcount_stale_version')
  from (
    select distinct site, date_trunc('hour', time, 'UTC') as hour
    from new_events
    where time < (select through from headcount_refresh_state)
  ) hours
  order by 1, 2
  on conflict (site, hour) do update set version = excluded.version;
  return null;
end
$$;
