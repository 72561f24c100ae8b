-- postgres mode: nothing to check. The aggregates are written by the inserting
-- transaction, so every snapshot sees them and the events alike (the timescaledb
-- definition checks the continuous aggregates' watermarks).
create or replace function headcount_check_snapshot() returns void
language plpgsql stable
as $$
begin
end
$$;
