-- The trigger of events (events_visits) keeps headcount_visits in the transaction of each
-- insert: the batch's events of each visitor (site, user_id) with the visitor's stored
-- visits that lie within visit_gap of them are cut into visits again (gaps and islands
-- over both), and those visits replace the stored ones. Adding events only shortens
-- gaps, so an insert can extend a visit or merge two, never split one: a stored visit
-- is a whole unit, and its entry (first event) and exit (last event) are kept as
-- columns, so no event is read again. docs/storage.md, "Visits".
--
-- Two batches with events of the same visitor: each takes a transaction-scoped advisory
-- lock per visitor (key class 'visi', hashtext of site/user), in ascending key order (no
-- deadlock), before the statement that reads and replaces the visits; plpgsql takes a
-- new snapshot per statement, so the second batch sees the first's visits committed.
create or replace function headcount_track_visits() returns trigger
language plpgsql
as $$
declare
  gap interval := (select s.visit_gap from headcount_settings s);
  key integer;
begin
  for key in
    select distinct hashtext(e.site || '/' || e.user_id) from new_events e where e.user_id is not null order by 1
  loop
    perform pg_advisory_xact_lock(1986622313, key);
  end loop;

  with batch as (
    select e.* from new_events e where e.user_id is not null
  ),
  span as (
    select b.site, b.user_id, min(b.time) - gap as lo, max(b.time) + gap as hi
    from batch b
    group by 1, 2
  ),
  old as (
    delete from headcount_visits v
    using span s
    where v.site = s.site and v.user_id = s.user_id and v.started < s.hi and v.ended > s.lo
    returning v.*
  ),
  units as (
    select o.site, o.user_id, o.started, o.ended, o.pageviews, o.others, o.entry_page, o.entry_kind, o.exit_page,
           o.referrer, o.utm_source, o.utm_medium, o.utm_campaign, o.utm_content, o.utm_term, o.country, o.device, o.browser, o.os
    from old o
    union all
    select b.site, b.user_id, b.time, b.time,
           case when b.kind = 'pageview' then b.weight else 0 end, case when b.kind = 'pageview' then 0 else b.weight end,
           b.page, b.kind, b.page,
           b.referrer, b.utm_source, b.utm_medium, b.utm_campaign, b.utm_content, b.utm_term, b.country, b.device, b.browser, b.os
    from batch b
  ),
  marked as (
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
  entries as (
    select distinct on (m.site, m.user_id, m.visit) m.*
    from marked m
    order by m.site, m.user_id, m.visit, m.started, m.entry_page collate "C", m.entry_kind collate "C",
             m.referrer collate "C", m.utm_source collate "C", m.utm_medium collate "C", m.utm_campaign collate "C",
             m.utm_content collate "C", m.utm_term collate "C", m.country collate "C", m.device collate "C",
             m.browser collate "C", m.os collate "C"
  ),
  exits as (
    select distinct on (m.site, m.user_id, m.visit) m.site, m.user_id, m.visit, m.exit_page
    from marked m
    order by m.site, m.user_id, m.visit, m.ended desc, m.exit_page collate "C" desc
  ),
  totals as (
    select m.site, m.user_id, m.visit, min(m.started) as started, max(m.ended) as ended,
           sum(m.pageviews)::bigint as pageviews, sum(m.others)::bigint as others
    from marked m
    group by 1, 2, 3
  )
  insert into headcount_visits (site, user_id, started, ended, pageviews, others, entry_page, entry_kind, exit_page,
                                referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, device, browser, os)
  select t.site, t.user_id, t.started, t.ended, t.pageviews, t.others, n.entry_page, n.entry_kind, x.exit_page,
         n.referrer, n.utm_source, n.utm_medium, n.utm_campaign, n.utm_content, n.utm_term, n.country, n.device, n.browser, n.os
  from totals t
  join entries n using (site, user_id, visit)
  join exits x using (site, user_id, visit);
  return null;
end
$$;
