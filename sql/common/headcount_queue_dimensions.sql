-- Queues stored events for the dimension rollups (called by headcount_events_inserted,
-- in the transaction that stores them): each event's user as the hash the sketches take,
-- its dimensions and properties, in headcount_pending. The roller (headcount_roll_up)
-- moves queued events into dimensions_hourly and dimensions_daily; a read adds what is
-- still queued, so an acknowledged event is in the very next answer of every filter and
-- group. Folding the dimensions here instead (an upsert per dimension and bucket) cost
-- ~10 times more per event: docs/storage.md, "Dimensions".
--
-- plpgsql, not sql: Citus cannot plan a statement of an sql function that uses its
-- parameters ("could not create distributed plan").
create or replace function headcount_queue_dimensions(inserted events[]) returns void
language plpgsql
as $$
begin
  insert into headcount_pending (site, time, kind, user_hash, weight, referrer, utm_source, utm_medium,
                                 utm_campaign, utm_content, utm_term, country, device, browser, os, source, props)
  select e.site, e.time, e.kind, hll_hash_text(e.user_id, p.seed), e.weight, e.referrer, e.utm_source, e.utm_medium,
         e.utm_campaign, e.utm_content, e.utm_term, e.country, e.device, e.browser, e.os, e.source, e.props
  from unnest(inserted) e, headcount_sketch_parameters() p;
end
$$;
