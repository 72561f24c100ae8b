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
  sites text[] := array(select distinct e.site from unnest(inserted) e where e.user_id is not null order by 1);
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
  -- A few sites: a statement for each, each routed to the shard holding its site. More:
  -- the same visits in seven statements over every shard at once
  -- (sql/citus/headcount_track_visits_sites.sql), whose cost does not grow with the sites.
  if cardinality(sites) >= 4 then
    perform headcount_track_visits_sites(inserted);
    return;
  end if;
  foreach one in array sites loop
    perform headcount_track_visits(array(select e from unnest(inserted) e where e.site = one), one);
  end loop;
end
$$;
