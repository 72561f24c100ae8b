-- One statement-level trigger per insert (or COPY) folds the batch into the visits, in
-- the same transaction: see headcount_track_visits.
create or replace trigger events_visits
  after insert on events
  referencing new table as new_events
  for each statement execute function headcount_track_visits();
