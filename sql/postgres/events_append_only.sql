-- See headcount_reject_change: no update or delete of single events.
create or replace trigger events_append_only
  before update or delete on events
  for each statement execute function headcount_reject_change();
