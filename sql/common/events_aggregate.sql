-- One statement-level trigger per insert (or COPY) folds the whole batch into the
-- aggregates, in the same transaction: they are never behind the raw events. What it
-- keeps depends on the storage mode: see headcount_apply_events.
create or replace trigger events_aggregate
  after insert on events
  referencing new table as new_events
  for each statement execute function headcount_apply_events();
