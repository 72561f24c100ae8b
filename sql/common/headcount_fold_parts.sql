-- Folds the parts the roller appended (dimensions_hourly, dimensions_daily,
-- dimensions_weekly, kinds_15m rows of part <> 0, one per roll and key) into their key's
-- row of part 0, in one transaction: a read sees a key's events in its parts or in part 0, never both, never
-- neither. Does nothing until the oldest part is older than `after` or there are
-- `max_parts` rolls' parts, so that part 0's sketch, up to 10 KB for a busy value's day,
-- is rewritten once per fold instead of once per roll, while a key keeps few rows to
-- union. Every roll calls it (headcount_roll_up); psql may too (after => '0').
-- Returns how many rows of part 0 it wrote (0: none due, or another session is rolling up).
create or replace function headcount_fold_parts(after interval default interval '5 minutes', max_parts integer default 32)
returns bigint
language plpgsql
as $$
declare
  oldest bigint;
  parts bigint;
  next_part bigint;
  total bigint := 0;
  t record;
begin
  -- The roller's lock: no roll appends a part while its key is folded.
  if not pg_try_advisory_xact_lock(1751937123) then
    return 0;
  end if;
  -- Every roll writes day rows (an event without dimensions too: its "no value" rows), so
  -- the day parts name every roll that left parts anywhere. Counted up to max_parts, one
  -- index probe per part (count(distinct) read every part's rows: 30,000 for 32 rolls),
  -- a statement each: Citus plans no recursive query over all shards.
  select min(d.part) into oldest from dimensions_daily d where d.part <> 0;
  parts := 0;
  next_part := oldest;
  while next_part is not null loop
    parts := parts + 1;
    exit when parts >= max_parts;
    select min(d.part) into next_part from dimensions_daily d where d.part <> 0 and d.part > next_part;
  end loop;
  if parts = 0 or (oldest > (extract(epoch from now() - after) * 1000)::bigint and parts < max_parts) then
    return 0;
  end if;
  for t in
    select * from (values ('dimensions_hourly', 'site, dims, bucket, kind, vals'),
                          ('dimensions_daily', 'site, dims, bucket, kind, vals'),
                          ('dimensions_weekly', 'site, dims, bucket, vals'),
                          ('kinds_15m', 'site, bucket, kind')) v(name, key)
  loop
    total := total + headcount_fold_table(t.name, t.key);
  end loop;
  return total;
end
$$;

comment on function headcount_fold_parts(interval, integer) is
  'headcount: folds the roller''s parts (rows of part <> 0 of dimensions_hourly, dimensions_daily, dimensions_weekly, kinds_15m) into part 0 once the oldest is older than after or there are max_parts rolls'' parts; returns how many keys it wrote';
