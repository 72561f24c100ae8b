-- What every stored event adds beside the raw events, in the transaction that stores it:
-- the aggregates (headcount_apply_events: minutes, hours and days, or the minutes and
-- the stale marks of the continuous aggregates, by storage mode), the dimension queue
-- (headcount_queue_dimensions) and the visits (headcount_track_visits), in that order.
--
-- Two signatures, one definition: headcount_events_inserted(inserted) takes the stored
-- rows, and is what a writer calls where no trigger can run on events (citus mode:
-- distributed tables have none); headcount_events_inserted() is the function of the
-- statement trigger events_inserted, and passes it the rows the statement inserted. One
-- array per statement: building it costs PostgreSQL ~0.5 µs per event (1,000-event
-- batches), which one trigger pays once rather than once per part.
create or replace function headcount_events_inserted(inserted events[]) returns void
language plpgsql
as $$
begin
  perform headcount_apply_events(inserted);
  perform headcount_queue_dimensions(inserted);
  perform headcount_track_visits(inserted);
end
$$;

create or replace function headcount_events_inserted() returns trigger
language plpgsql
as $$
begin
  perform headcount_events_inserted(array(select e::events from new_events e));
  return null;
end
$$;
