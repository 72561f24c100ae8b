-- Keeps headcount_visits, called by headcount_events_inserted in the transaction that
-- stores the events: the batch's events of each visitor (site, user_id) with the visitor's stored
-- visits that lie within visit_gap of them are cut into visits again (gaps and islands
-- over both), and those visits replace the stored ones. Adding events only shortens
-- gaps, so an insert can extend a visit or merge two, never split one: a stored visit
-- is a whole unit, and its entry (first event) and exit (last event) are kept as
-- columns, so no event is read again. docs/storage.md, "Visits".
--
-- Two batches with events of the same visitor: each takes a transaction-scoped advisory
-- lock per visitor's bucket (key class 'visi', hashtext of site/user, one of 256
-- buckets), in ascending key order (no deadlock), before the statement that reads and
-- replaces the visits; plpgsql takes a new snapshot per statement, so the second batch
-- sees the first's visits committed. Buckets, not visitors: a lock per visitor took
-- 10,000 entries of PostgreSQL's shared lock table for a 10,000-event batch, which has
-- max_locks_per_transaction x max_connections (6,400 by default) for every session, and
-- the batch failed with "out of shared memory" (503). Concurrent batches already wait
-- for each other on the aggregates' rows of the same minutes.
--
-- Two signatures, one definition. headcount_track_visits(inserted, one_site): the batch
-- holds that site's events only, and every read and delete of headcount_visits names it,
-- so that Citus routes the statement to the shard holding the site (citus mode calls it
-- once per site: sql/citus/headcount_events_inserted.sql; over all shards Citus refuses
-- the lateral subqueries). headcount_track_visits(inserted), what the other modes call:
-- one_site null, one statement for the whole batch (one per site cost 34.5 µs per event
-- against 25.8 for 1,000-event batches over 50 sites, note6-21), the null test folding
-- away when planned.
create or replace function headcount_track_visits(inserted events[], one_site text) returns void
language plpgsql
as $$
declare
  gap interval := (select s.visit_gap from headcount_settings s);
  cache_mode text := current_setting('plan_cache_mode');
  seqscan text := current_setting('enable_seqscan');
  bitmapscan text := current_setting('enable_bitmapscan');
  stored_visits bigint;
begin
  -- How the statement below is planned. Once headcount_visits has statistics of 1,000 rows
  -- or more (headcount_analyze_new, autovacuum), a batch of up to 100 events gets one plan
  -- for every call (PostgreSQL otherwise plans it again at each call whose batch is small,
  -- ~0.8 ms of a one-event write's 2 ms). Every other call is planned for its own rows and
  -- the table as it is then: a larger batch (its planning is spread over its rows; the
  -- shared plan cost 1,000-event batches 1.2x), and any batch while the table has fewer
  -- or no statistics (never analyzed, or truncated since). Left to PostgreSQL's choice
  -- there, a session kept the generic plan it had made while the table was empty, which
  -- looks visits up by headcount_visits_started_idx (site only) and finds the ctids to
  -- delete by a sequential scan: every batch read every visit of the site, once per span.
  -- 20,000 events of visitors with 40,000 stored visits took minutes instead of a second
  -- (test/db/visits-plans.test.ts).
  perform set_config('plan_cache_mode',
                     case when cardinality(inserted) <= 100
                               and (select c.reltuples from pg_class c where c.oid = 'headcount_visits'::regclass) >= 1000
                          then 'force_generic_plan' else 'force_custom_plan' end, true);

  -- And whatever the statistics say, it reads headcount_visits by index or by tid only:
  -- statistics can say the table is empty while it holds thousands of visits (an ANALYZE,
  -- autovacuum's or headcount_analyze_new's, that ran while a batch was uncommitted counts
  -- none of its rows in the pages they fill, until the next analyze), and a plan made on
  -- them looked each visitor's visits up by a bitmap scan of headcount_visits_started_idx
  -- (site only): 10,000 events of visitors with 20,000 stored visits ran over a minute
  -- (test/db/visits-plans.test.ts). These two settings touch no other table: the rest of
  -- the statement reads the batch and its own CTEs. Both laterals order by ended, which
  -- only headcount_visits_user_idx gives without a sort.
  perform set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true);

  perform pg_advisory_xact_lock(1986622313, k.key)
  from (
    select distinct hashtext(e.site || '/' || e.user_id) & 255 as key from unnest(inserted) e where e.user_id is not null order by 1
  ) k;

  with batch as (
    select e.* from unnest(inserted) e where e.user_id is not null
  ),
  span as (
    -- A stored visit can only merge with events within visit_gap of it: the batch's events
    -- of each visitor, cut where two are 2 × visit_gap or more apart, each island widened
    -- by visit_gap. One span per visitor from the first event to the last rewrote every
    -- visit between them: a batch of back-dated events over 12 days read and replaced
    -- most of each visitor's visits.
    select i.site, i.user_id, min(i.time) - gap as lo, max(i.time) + gap as hi
    from (
      select c.*, sum(c.brk) over (partition by c.site, c.user_id order by c.time rows unbounded preceding) as island
      from (
        select b.site, b.user_id, b.time,
               case when b.time - lag(b.time) over (partition by b.site, b.user_id order by b.time) < 2 * gap
                    then 0 else 1 end as brk
        from batch b
      ) c
    ) i
    group by i.site, i.user_id, i.island
  ),
  found as (
    -- By tid, found per span through headcount_visits_user_idx: a join planned from the
    -- batch's unknown row count would scan every visit. A visitor's visits are disjoint,
    -- so those meeting (lo, hi) are the ones that end inside it and, of those that end
    -- later, the first if it starts before hi: two bounded index scans (ended > lo alone
    -- read every later visit of the visitor). A visit meeting two spans is found twice.
    select array(
      select x.ctid
      from span s
      cross join lateral (
        select o.ctid from headcount_visits o
        where o.site = s.site and (one_site is null or o.site = one_site) and o.user_id = s.user_id and o.ended > s.lo and o.ended < s.hi
        order by o.ended
        offset 0 -- kept a subquery: one index scan per span
      ) x
      union all
      select n.ctid
      from span s
      cross join lateral (
        select o.ctid, o.started from headcount_visits o
        where o.site = s.site and (one_site is null or o.site = one_site) and o.user_id = s.user_id and o.ended >= s.hi
        order by o.ended
        limit 1
      ) n
      where n.started < s.hi
    ) as tids
  ),
  old as (
    delete from headcount_visits v
    -- coalesce: Citus sends "= any ((select ...))" to the worker as "= any (select ...)"
    -- (tid = tid[], refused).
    where (one_site is null or v.site = one_site) and v.ctid = any (coalesce((select f.tids from found f), '{}'))
    returning v.*
  ),
  units as (
    select o.site, o.user_id, o.started, o.ended, o.pageviews, o.others, o.entry_page, o.entry_kind, o.exit_page,
           o.referrer, o.utm_source, o.utm_medium, o.utm_campaign, o.utm_content, o.utm_term, o.country, o.device, o.browser, o.os, o.source
    from old o
    union all
    select b.site, b.user_id, b.time, b.time,
           case when b.kind = 'pageview' then b.weight else 0 end, case when b.kind = 'pageview' then 0 else b.weight end,
           b.page, b.kind, b.page,
           b.referrer, b.utm_source, b.utm_medium, b.utm_campaign, b.utm_content, b.utm_term, b.country, b.device, b.browser, b.os, b.source
    from batch b
  ),
  marked as (
    -- A unit starts a visit when it begins visit_gap or more after every unit before it ended.
    select u.*,
           sum(u.brk) over (partition by u.site, u.user_id order by u.started, u.ended rows unbounded preceding) as visit
    from (
      select u.*,
             case when u.started - max(u.ended) over (partition by u.site, u.user_id order by u.started, u.ended
                                                      rows between unbounded preceding and 1 preceding) < gap
                  then 0 else 1 end as brk
      from units u
    ) u
  ),
  ranked as (
    -- The unit holding the visit's first event (in the order time, page, kind, dimensions)
    -- and the one holding its last.
    select m.*,
           row_number() over (partition by m.site, m.user_id, m.visit
                              order by m.started, m.entry_page collate "C", m.entry_kind collate "C",
                                       m.referrer collate "C", m.utm_source collate "C", m.utm_medium collate "C",
                                       m.utm_campaign collate "C", m.utm_content collate "C", m.utm_term collate "C",
                                       m.country collate "C", m.device collate "C", m.browser collate "C", m.os collate "C",
                                       m.source collate "C") as first,
           row_number() over (partition by m.site, m.user_id, m.visit order by m.ended desc, m.exit_page collate "C" desc) as last
    from marked m
  ),
  moved as (
    select (select count(distinct t) from found f, unnest(f.tids) t) - (select count(*) from old) as visits
  )
  insert into headcount_visits (site, user_id, started, ended, pageviews, others, entry_page, entry_kind, exit_page,
                                referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, device, browser, os, source)
  select r.site, r.user_id, min(r.started), max(r.ended), sum(r.pageviews), sum(r.others),
         min(r.entry_page) filter (where r.first = 1), min(r.entry_kind) filter (where r.first = 1),
         min(r.exit_page) filter (where r.last = 1),
         min(r.referrer) filter (where r.first = 1), min(r.utm_source) filter (where r.first = 1),
         min(r.utm_medium) filter (where r.first = 1), min(r.utm_campaign) filter (where r.first = 1),
         min(r.utm_content) filter (where r.first = 1), min(r.utm_term) filter (where r.first = 1),
         min(r.country) filter (where r.first = 1), min(r.device) filter (where r.first = 1),
         min(r.browser) filter (where r.first = 1), min(r.os) filter (where r.first = 1),
         min(r.source) filter (where r.first = 1)
  from ranked r
  where (select m.visits from moved m) = 0
  group by r.site, r.user_id, r.visit;
  get diagnostics stored_visits = row_count;
  -- Every visit found is deleted, unless a transaction that replaced it committed meanwhile.
  -- The visitor lock above orders two writes of one visitor, but in citus mode the
  -- coordinator's commit releases it while a worker whose COMMIT PREPARED failed still
  -- holds its part of the earlier write, prepared, until a recovery commits it
  -- (src/db/citus-commits.ts). A write reading that worker then finds the visitor's visits
  -- as they were, its delete waits for the prepared rows and skips those the earlier write
  -- replaced, and the visits it stores would clash with that write's (a unique violation,
  -- answered 422) or overlap them. So then it stores none (the insert's condition on
  -- moved; otherwise a batch with a user's event stores one visit or more) and the
  -- transaction fails as a serialization failure, which the writer runs again
  -- (src/ingest/writer.ts), the earlier write committed by then. (moved is not read out
  -- of the statement: Citus plans a statement naming one site when it is an insert, not
  -- when it is a select over data-modifying CTEs.) Not seen here, since nothing is found:
  -- a visitor with no stored visit whose first events are in both writes. For that, citus
  -- mode takes each visitor's lock row on its worker before this statement, which waits
  -- for the earlier write there (sql/citus/headcount_events_inserted.sql); and after a
  -- missed commit the service sends no write of those sites until it is recovered.
  if stored_visits = 0 and exists (select from unnest(inserted) e where e.user_id is not null) then
    raise exception using
      errcode = 'serialization_failure',
      message = 'stored visits of these visitors were replaced by a concurrent write';
  end if;
  perform set_config('plan_cache_mode', cache_mode, true), set_config('enable_seqscan', seqscan, true),
          set_config('enable_bitmapscan', bitmapscan, true);
end
$$;

create or replace function headcount_track_visits(inserted events[]) returns void
language plpgsql
as $$
begin
  perform headcount_track_visits(inserted, null);
end
$$;
