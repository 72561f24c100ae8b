-- One roll's move (headcount_roll_up calls it under the roller's lock, in its
-- transaction): up to max_rows queued events, taken from the whole queue in one pass
-- (headcount_roll_up_events). citus mode: site by site (sql/citus/headcount_roll_up_batch.sql).
-- Returns how many it moved.
create or replace function headcount_roll_up_batch(max_rows integer)
returns integer
language plpgsql
as $$
begin
  return headcount_roll_up_events(max_rows, null);
end
$$;
