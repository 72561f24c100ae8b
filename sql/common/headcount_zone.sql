-- A time zone argument (an IANA name or ±HH:MM), checked, as a TimeZone setting.
-- Bad arguments raise SQLSTATE 22023 with COLUMN set to the argument's name: the route
-- turns those into a 400 naming the query parameter.
create or replace function headcount_zone(timezone text) returns text
language plpgsql immutable
as $$
declare
  m text[];
begin
  if timezone is null then
    raise exception 'timezone is required: an IANA name such as Asia/Kolkata, or an offset such as +05:30'
      using errcode = '22023', column = 'timezone';
  end if;
  m := regexp_match(timezone, '^([+-])([0-9]{2}):([0-9]{2})$');
  if m is not null then
    if m[2]::int > 18 or m[3]::int > 59 or (m[2]::int = 18 and m[3]::int > 0) then
      raise exception 'timezone % is not an offset from -18:00 to +18:00', timezone
        using errcode = '22023', column = 'timezone';
    end if;
    -- A POSIX zone, whose sign is the opposite of ISO 8601's: UTC-05:30 is 5:30 east.
    return 'UTC' || case m[1] when '+' then '-' else '+' end || m[2] || ':' || m[3];
  end if;
  -- Names only: PostgreSQL would also read POSIX strings such as UTC+3 (3 hours west).
  if timezone !~ '^[A-Za-z_]+(/[A-Za-z0-9_+-]+)*$' then
    raise exception 'timezone % is neither an IANA time zone name (Asia/Kolkata) nor an offset (+05:30)', timezone
      using errcode = '22023', column = 'timezone';
  end if;
  -- Names the server's zone database holds that are not IANA zones: its own zone
  -- (localtime), a placeholder (Factory), a template (posixrules), posix/… and right/…
  -- (the route refuses the same: isNonIanaZoneName in src/time.ts).
  if timezone ~* '^(localtime|factory|posixrules|(posix|right)(/.*)?)$' then
    raise exception 'timezone % is not a time zone of the IANA database (an IANA name such as Asia/Kolkata, or an offset such as +05:30)', timezone
      using errcode = '22023', column = 'timezone';
  end if;
  return timezone;
end
$$;
