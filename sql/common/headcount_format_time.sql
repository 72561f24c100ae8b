-- The body runs with TimeZone set to its timezone argument; the SET clause restores the
-- caller's TimeZone when it returns.
create or replace function headcount_format_time(instant timestamptz, timezone text) returns text
language plpgsql stable
set timezone = 'UTC'
as $$
begin
  perform headcount_use_zone(timezone);
  return to_char(instant, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM');
end
$$;

comment on function headcount_format_time(timestamptz, text) is
  'headcount: an instant as ISO 8601 local time with its offset in timezone';
