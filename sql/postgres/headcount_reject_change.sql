-- The aggregates cannot follow updates or deletes of single rows: events are
-- append-only in postgres mode, and old days leave by whole partitions
-- (headcount_maintain_partitions).
create or replace function headcount_reject_change() returns trigger
language plpgsql
as $$
begin
  raise exception 'events are append-only in postgres storage mode'
    using errcode = 'feature_not_supported',
          hint = 'old days are dropped whole by headcount_maintain_partitions()';
end
$$;
