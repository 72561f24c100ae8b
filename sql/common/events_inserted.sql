-- One statement-level trigger per insert (or COPY): headcount_events_inserted folds the
-- whole batch into what is kept beside the raw events, in the same transaction, so that
-- nothing is ever behind them.
create or replace trigger events_inserted
  after insert on events
  referencing new table as new_events
  for each statement execute function headcount_events_inserted();
