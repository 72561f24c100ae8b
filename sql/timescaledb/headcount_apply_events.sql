-- timescaledb mode: adds stored events to events_minutely_parts, called by
-- headcount_events_inserted in the transaction that stores them, so the current minute
-- is always exact; hours and days are continuous aggregates above it. Each row it writes
-- is a part of its own (part = this transaction's id: a small sketch of its events),
-- which headcount_fold_events folds into part 0 within a second or so; reads union a
-- key's rows. The conflict is this transaction's second statement on the same key. A
-- row written below the finest aggregate's watermark (headcount_refresh_state.through) marks its hour
-- in headcount_stale_hours, and the hour and day views answer that hour afresh until the
-- refresher (src/db/refresher.ts) re-materializes it.
--
-- The shared lock below (key 0x6865_6d76, "hemv": MOVE_LOCK_KEY in src/db/refresher.ts),
-- held until the inserting transaction ends, is what a refresher pass takes exclusively
-- while it moves "through" and TimescaleDB's invalidation threshold of events_minutely
-- to the start of the current 10 minutes. TimescaleDB decides at commit whether a write
-- invalidates the aggregates (only below the threshold as it reads it then), and moves
-- the threshold without waiting for writers: a write marked below the new "through" that
-- read the old threshold at commit, and became visible after the refresh had
-- materialized its bucket, was neither materialized nor logged, and the next pass
-- cleared its mark (test/read/threshold-race.test.ts). So an insert either commits
-- before both moves or runs wholly after them.
create or replace function headcount_apply_events(inserted events[]) returns void
language plpgsql
as $$
declare
  this_part bigint := txid_current();
begin
  perform pg_advisory_xact_lock_shared(1751477622);

  insert into events_minutely_parts as a (site, bucket, kind, page, part, events, users)
  select site, date_trunc('minute', time, 'UTC'), kind, page, this_part, sum(weight),
         hll_add_agg(hll_hash_text(user_id, p.seed), p.log2m, p.regwidth, p.expthresh, p.sparseon)
  from unnest(inserted) e, headcount_sketch_parameters() p
  group by 1, 2, 3, 4
  on conflict (site, bucket, kind, page, part) do update
  set events = a.events + excluded.events,
      users = hll_union(a.users, excluded.users);

  -- This runs under the shared lock taken above, which the refresher's move of "through"
  -- waits for (src/db/refresher.ts); and plpgsql takes a new snapshot per statement. So
  -- "through" cannot move between this read and the commit: a row is either marked here
  -- or lies above every watermark until committed.
  insert into headcount_stale_hours (site, hour, version)
  select site, hour, nextval('headcount_stale_version')
  from (
    select distinct site, date_trunc('hour', time, 'UTC') as hour
    from unnest(inserted) e
    where time < (select through from headcount_refresh_state)
  ) hours
  order by 1, 2
  on conflict (site, hour) do update set version = excluded.version;
end
$$;
