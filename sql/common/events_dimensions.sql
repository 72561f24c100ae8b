-- One statement-level trigger per insert (or COPY) queues the batch for the dimension
-- rollups, in the same transaction: see headcount_queue_dimensions.
create or replace trigger events_dimensions
  after insert on events
  referencing new table as new_events
  for each statement execute function headcount_queue_dimensions();
