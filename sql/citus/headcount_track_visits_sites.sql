-- citus mode: headcount_track_visits (sql/common/headcount_track_visits.sql) for a batch
-- over many sites, in eight statements whatever the number of sites, where the other calls
-- it once per site. Citus plans that statement only when it names one site, through the
-- coordinator, and a batch of one-event requests over 50 sites spent three quarters of
-- its time there (docs/storage.md). Here every statement reads and writes tables
-- co-located with headcount_visits, joined on site, so Citus sends it to every shard at
-- once: the batch's spans and units go to two staging tables
-- (migrations/1797004800000_visit_staging.ts; the units' tid: 1797091200000_visit_unit_tids.ts)
-- under a batch id of their own, the stored
-- visits that meet a span are moved to the units, the units are cut into visits again
-- and inserted, and the staging rows are deleted. The same visits as the other: the
-- visits that meet a span are those that end after its start and start before its end (a
-- visitor's visits are disjoint); the cut, entry and exit are the same expressions.
-- The caller (sql/citus/headcount_events_inserted.sql) has taken the batch's visitor
-- locks, and turned sequential and bitmap scans off on the workers too (SET LOCAL, which
-- Citus passes on to them): the statements below that read headcount_visits fix their
-- join order themselves, and need the workers to keep to index and tid lookups within it.
create or replace function headcount_track_visits_sites(inserted events[]) returns void
language plpgsql
as $$
declare
  gap interval := (select s.visit_gap from headcount_settings s);
  batch_id uuid := gen_random_uuid();
  indexscan text := current_setting('enable_indexscan');
  found_visits bigint;
  deleted_visits bigint;
begin
  insert into headcount_visit_spans (batch, site, user_id, lo, hi)
  select batch_id, i.site, i.user_id, min(i.time) - gap, max(i.time) + gap
  from (
    select c.*, sum(c.brk) over (partition by c.site, c.user_id order by c.time rows unbounded preceding) as island
    from (
      select e.site, e.user_id, e.time,
             case when e.time - lag(e.time) over (partition by e.site, e.user_id order by e.time) < 2 * gap
                  then 0 else 1 end as brk
      from unnest(inserted) e
      where e.user_id is not null
    ) c
  ) i
  group by i.site, i.user_id, i.island;

  -- The visitors' buckets taken on the workers, before any visit is read: a write whose
  -- COMMIT PREPARED a worker missed holds them there until it is recovered, and this
  -- statement waits for it (sql/citus/headcount_events_inserted.sql says why). On every
  -- shard at once, from the spans: a bucket's row inserted the first time, and every
  -- other locked, not written (PostgreSQL locks the rows an ON CONFLICT DO UPDATE's
  -- condition leaves as they are; Citus runs SELECT FOR UPDATE on one shard only).
  insert into headcount_visit_locks as l (site, bucket)
  select s.site, hashtext(s.site || '/' || s.user_id) & 255
  from headcount_visit_spans s
  where s.batch = batch_id
  group by 1, 2
  on conflict (site, bucket) do update set bucket = excluded.bucket where false;

  -- The stored visits that meet a span, looked up span by span through
  -- headcount_visits_user_idx as the single-site statement does (a lateral join, which
  -- fixes the order: a join left to the workers' planner was planned from the shards'
  -- statistics, and with statistics of no rows, which an ANALYZE taken while a batch was
  -- uncommitted leaves, it read every visit of the shard once per span: 10,000 events
  -- over 5 sites against 40,000 visits took 7-9 s instead of 0.6 s). Each with its tid,
  -- once (a visit can meet two spans of its visitor).
  insert into headcount_visit_units (batch, site, user_id, started, ended, pageviews, others, entry_page, entry_kind, exit_page,
                                     referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, device, browser, os, source, tid)
  select distinct on (f.site, f.tid)
         batch_id, f.site, f.user_id, f.started, f.ended, f.pageviews, f.others, f.entry_page, f.entry_kind, f.exit_page,
         f.referrer, f.utm_source, f.utm_medium, f.utm_campaign, f.utm_content, f.utm_term, f.country, f.device, f.browser, f.os, f.source, f.tid
  from (
    select x.*
    from headcount_visit_spans s
    cross join lateral (
      select o.*, o.ctid as tid from headcount_visits o
      where o.site = s.site and o.user_id = s.user_id and o.ended > s.lo and o.ended < s.hi
      order by o.ended
      offset 0
    ) x
    where s.batch = batch_id
    union all
    select n.*
    from headcount_visit_spans s
    cross join lateral (
      select o.*, o.ctid as tid from headcount_visits o
      where o.site = s.site and o.user_id = s.user_id and o.ended >= s.hi
      order by o.ended
      limit 1
    ) n
    where s.batch = batch_id and n.started < s.hi
  ) f;
  get diagnostics found_visits = row_count;

  -- Deleted by tid (each shard's units name visits of its own sites), the units driving:
  -- with index scans off too, the one path left to headcount_visits is a tid scan per
  -- unit, whatever the statistics (with them on, statistics of no rows had the shard's
  -- every visit joined to the batch's units).
  set local enable_indexscan = off;
  perform set_config('enable_indexscan', indexscan, true); -- the coordinator's own, as before
  delete from headcount_visits o
  using headcount_visit_units u
  where u.batch = batch_id and u.tid is not null and o.site = u.site and o.ctid = u.tid;
  get diagnostics deleted_visits = row_count;
  reset enable_indexscan;
  perform set_config('enable_indexscan', indexscan, true);
  -- Every visit found is deleted, unless a write that replaced it committed meanwhile: one
  -- whose COMMIT PREPARED this worker missed, committed by a recovery while this delete
  -- waited for its rows. The visits stored now would clash with that write's or overlap
  -- them: the transaction fails to serialize, and the writer runs it again
  -- (sql/common/headcount_track_visits.sql, "Every visit found").
  if deleted_visits < found_visits then
    raise exception using
      errcode = 'serialization_failure',
      message = format('%s stored visits were replaced by a concurrent write', found_visits - deleted_visits);
  end if;

  insert into headcount_visit_units (batch, site, user_id, started, ended, pageviews, others, entry_page, entry_kind, exit_page,
                                     referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, device, browser, os, source)
  select batch_id, b.site, b.user_id, b.time, b.time,
         case when b.kind = 'pageview' then b.weight else 0 end, case when b.kind = 'pageview' then 0 else b.weight end,
         b.page, b.kind, b.page,
         b.referrer, b.utm_source, b.utm_medium, b.utm_campaign, b.utm_content, b.utm_term, b.country, b.device, b.browser, b.os, b.source
  from unnest(inserted) b
  where b.user_id is not null;

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
  from (
    select m.*,
           row_number() over (partition by m.site, m.user_id, m.visit
                              order by m.started, m.entry_page collate "C", m.entry_kind collate "C",
                                       m.referrer collate "C", m.utm_source collate "C", m.utm_medium collate "C",
                                       m.utm_campaign collate "C", m.utm_content collate "C", m.utm_term collate "C",
                                       m.country collate "C", m.device collate "C", m.browser collate "C", m.os collate "C",
                                       m.source collate "C") as first,
           row_number() over (partition by m.site, m.user_id, m.visit order by m.ended desc, m.exit_page collate "C" desc) as last
    from (
      select u.*,
             sum(u.brk) over (partition by u.site, u.user_id order by u.started, u.ended rows unbounded preceding) as visit
      from (
        select u.*,
               case when u.started - max(u.ended) over (partition by u.site, u.user_id order by u.started, u.ended
                                                        rows between unbounded preceding and 1 preceding) < gap
                    then 0 else 1 end as brk
        from headcount_visit_units u
        where u.batch = batch_id
      ) u
    ) m
  ) r
  group by r.site, r.user_id, r.visit;

  delete from headcount_visit_units where batch = batch_id;
  delete from headcount_visit_spans where batch = batch_id;
end
$$;
