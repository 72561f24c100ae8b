-- citus mode: what every stored event adds (sql/common/headcount_events_inserted.sql),
-- called by the writer in the statement that inserts (no trigger on distributed tables:
-- sql/citus/events_inserted.sql), with the visits kept site by site: Citus plans
-- headcount_track_visits' statement only when it names one site (it is then routed to the
-- shard holding it), or for a batch over many sites by headcount_track_visits_sites. All
-- in the inserting transaction.
create or replace function headcount_events_inserted(inserted events[]) returns void
language plpgsql
as $$
declare
  one text;
  propagate text := current_setting('citus.propagate_set_commands');
  seqscan text := current_setting('enable_seqscan');
  bitmapscan text := current_setting('enable_bitmapscan');
  jit_on text := current_setting('jit');
  indexscan text := current_setting('enable_indexscan');
  sites text[] := array(select distinct e.site from unnest(inserted) e where e.user_id is not null order by 1);
  buckets integer[];
  locked bigint;
begin
  perform headcount_apply_events(inserted);
  perform headcount_queue_dimensions(inserted);
  -- The visitors' buckets of the whole batch first, in ascending order, as
  -- headcount_track_visits takes them for its batch: taken site by site, two batches
  -- over the same sites could each hold a bucket the other waits for (deadlock).
  perform pg_advisory_xact_lock(1986622313, k.key)
  from (
    select distinct hashtext(e.site || '/' || e.user_id) & 255 as key from unnest(inserted) e where e.user_id is not null order by 1
  ) k;
  -- The visits statements read headcount_visits by index or by tid only, whatever the
  -- statistics say (sql/common/headcount_track_visits.sql sets the same for its own
  -- planning): the workers plan those statements, so the settings go to them too, as SET
  -- LOCAL, which Citus passes on to every worker of the transaction while
  -- citus.propagate_set_commands is 'local' (set_config is not passed on), and RESET
  -- after them. Statistics of no rows in full pages, which an ANALYZE taken while a batch
  -- was uncommitted leaves, made a batch over many sites read every visit of a shard
  -- once per span (test/db/citus-visits-plans.test.ts).
  if cardinality(sites) = 0 then
    return;
  end if;
  perform set_config('citus.propagate_set_commands', 'local', true);
  set local enable_seqscan = off;
  set local enable_bitmapscan = off;
  -- And no JIT: a plan holding a scan that only a disabled path can make (the staging
  -- table's in headcount_track_visits_sites' delete, where sequential and index scans are
  -- both off) costs over
  -- jit_above_cost, and each worker compiled its shards' statements (about 650 ms a
  -- shard's statement in EXPLAIN ANALYZE): a 32-event batch over 5 sites took 400-480 ms
  -- instead of about 70.
  set local jit = off;
  -- On the coordinator, the previous values again (set_config is not passed on), for the
  -- statements it plans itself; headcount_track_visits sets its own.
  perform set_config('enable_seqscan', seqscan, true), set_config('enable_bitmapscan', bitmapscan, true),
          set_config('jit', jit_on, true);
  -- A few sites: a statement for each, each routed to the shard holding its site. More:
  -- the same visits in eight statements over every shard at once
  -- (sql/citus/headcount_track_visits_sites.sql), whose cost does not grow with the sites.
  if cardinality(sites) >= 4 then
    perform headcount_track_visits_sites(inserted);
  else
    -- The coordinator's locks above are released by its commit, but a worker that missed
    -- the COMMIT PREPARED of an earlier write of these visitors still holds that write's
    -- part prepared, its visits invisible, until a recovery commits it
    -- (src/db/citus-commits.ts): read then, a visitor's visits are as they were before
    -- it, and a new visitor has none (the one case the visits statements' check of the
    -- visits they found and deleted cannot see: nothing found, and a second visit stored
    -- beside the earlier one). So the same buckets are also taken on the workers, as rows
    -- of headcount_visit_locks locked here (FOR UPDATE; a bucket's row made the first
    -- time): that waits there for the earlier write's transaction, prepared or not, and
    -- the visits statements after it take new snapshots, which see that write. Live
    -- writes never wait there: they hold the coordinator's locks of the same buckets.
    -- (headcount_track_visits_sites takes the same rows from its spans.) Site by site,
    -- each routed to its shard: an upsert sent from the coordinator, which Citus runs
    -- through intermediate results, cost more (docs/benchmarks.md, "Visit lock rows on
    -- the workers").
    foreach one in array sites loop
      buckets := array(
        select distinct hashtext(e.site || '/' || e.user_id) & 255 from unnest(inserted) e
        where e.site = one and e.user_id is not null order by 1
      );
      perform from headcount_visit_locks l where l.site = one and l.bucket = any (buckets) for update;
      get diagnostics locked = row_count;
      if locked < cardinality(buckets) then
        insert into headcount_visit_locks (site, bucket)
        select one, b from unnest(buckets) b
        on conflict (site, bucket) do nothing;
        perform from headcount_visit_locks l where l.site = one and l.bucket = any (buckets) for update;
      end if;
    end loop;
    -- Index scans off too: its delete names the site (Citus routes by it), and with
    -- statistics of no rows the workers read the site's every visit by index to find the
    -- visits' tids in the batch's array, instead of a tid scan. Its lookups stay index
    -- scans: no other path can find a visitor's visits, and of disabled paths the planner
    -- takes the cheapest.
    set local enable_indexscan = off;
    perform set_config('enable_indexscan', indexscan, true);
    foreach one in array sites loop
      perform headcount_track_visits(array(select e from unnest(inserted) e where e.site = one), one);
    end loop;
    reset enable_indexscan;
  end if;
  reset enable_seqscan;
  reset enable_bitmapscan;
  reset jit;
  perform set_config('enable_seqscan', seqscan, true), set_config('enable_bitmapscan', bitmapscan, true),
          set_config('jit', jit_on, true), set_config('enable_indexscan', indexscan, true),
          set_config('citus.propagate_set_commands', propagate, true);
end
$$;
