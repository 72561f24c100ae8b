-- postgres mode: day partitions of events for the retention window and a few days
-- ahead; drops the days that left it, minutes and hours with them, and day sketches
-- older than sketch_retention. Callers hold an advisory lock so that one instance at a
-- time does it (src/db/partitions.ts). Days are UTC days whatever the caller's TimeZone
-- (the SET clause): timestamptz + interval '1 day' follows the session's zone.
create or replace function headcount_maintain_partitions(
  at timestamptz default now(),
  days_ahead integer default 3,
  sketch_retention interval default null
)
returns table (created text[], dropped text[])
language plpgsql
set timezone = 'UTC'
as $$
declare
  horizon timestamptz := at - interval '60 days';
  kept interval := coalesce(sketch_retention, (select s.sketch_retention from headcount_settings s));
  day timestamptz;
  part record;
  made text[] := '{}';
  gone text[] := '{}';
  name text;
begin
  for part in
    select c.relname
    from pg_inherits i join pg_class c on c.oid = i.inhrelid
    where i.inhparent = 'events'::regclass and c.relname ~ '^events_p[0-9]{8}$'
  loop
    -- Partitions are named by their UTC day: events_pYYYYMMDD.
    if to_timestamp(substr(part.relname, 9), 'YYYYMMDD')::timestamp at time zone 'UTC' + interval '1 day' <= horizon then
      execute format('drop table %I', part.relname);
      gone := gone || part.relname::text;
    end if;
  end loop;
  delete from events_default where time < date_trunc('day', horizon, 'UTC');
  delete from events_minutely_parts where bucket < date_trunc('day', horizon, 'UTC');
  delete from events_hourly_parts where bucket < date_trunc('day', horizon, 'UTC');
  delete from totals_hourly_parts where bucket < date_trunc('day', horizon, 'UTC');
  -- The column alone on its side (the same days: the zone is UTC here): Citus (citus
  -- mode runs this file too) refuses a stable function of a column in a delete.
  delete from events_daily_parts where bucket <= at - kept - interval '1 day';
  delete from totals_daily_parts where bucket <= at - kept - interval '1 day';

  day := date_trunc('day', horizon, 'UTC');
  while day <= date_trunc('day', at, 'UTC') + make_interval(days => days_ahead) loop
    name := 'events_p' || to_char(day at time zone 'UTC', 'YYYYMMDD');
    if to_regclass(name) is null then
      execute format('create table %I partition of events for values from (%L) to (%L)',
                     name, day, day + interval '1 day');
      made := made || name;
    end if;
    day := day + interval '1 day';
  end loop;
  return query select made, gone;
end
$$;
