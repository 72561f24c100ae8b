-- The body runs with TimeZone set to its timezone argument; the SET clause restores the
-- caller's TimeZone when it returns.
create or replace function headcount_day_start(day date, timezone text) returns timestamptz
language plpgsql stable
set timezone = 'UTC'
as $$
begin
  perform headcount_use_zone(timezone);
  -- From local noon, which exists on every day, to the start of the day as date_trunc
  -- sees it: the same instant the stats buckets start at.
  return date_trunc('day', (day + time '12:00')::timestamptz);
end
$$;

comment on function headcount_day_start(date, text) is
  'headcount: the instant the local calendar day starts in timezone (IANA name or ±HH:MM)';
