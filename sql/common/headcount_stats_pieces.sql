-- The local buckets of [from_time, to_time) in timezone and the UTC pieces that tile
-- each: (bucket number, bucket start, its label, level, [ps, pe)). The zone is set for
-- this function only: calendar arithmetic (+ 1 day, date_trunc) follows it here, and
-- nowhere else. Called by headcount_stats only.
create or replace function headcount_stats_pieces(
  from_time timestamptz, to_time timestamptz, g text, step interval, bucket_count bigint, timezone text
)
returns table (n bigint, bucket timestamptz, label text, level text, ps timestamptz, pe timestamptz)
language plpgsql stable
set timezone = 'UTC'
as $$
#variable_conflict use_column
begin
  perform headcount_use_zone(timezone);
  return query
  with starts as (
    -- Minutes: every UTC minute is a local one. Hours: the instants on a 15-minute
    -- grid (every zone's offset is a multiple of 15 minutes) at a local minute 0,
    -- which counts a repeated DST hour twice and follows a 30-minute DST shift. Days,
    -- weeks and months: the local start of the first one plus i steps, truncated
    -- again, so that a day missing its midnight does not shift the days after it.
    select case g
             when 'total' then from_time
             when 'minute' then date_trunc('minute', from_time) + i * interval '1 minute'
             when 'hour' then date_trunc('hour', from_time, 'UTC') - interval '2 hours' + i * interval '15 minutes'
             else date_trunc(g, date_trunc(g, from_time) + i * step)
           end as b
    from generate_series(0::bigint, case when g = 'hour' then 4 * bucket_count + 8 else bucket_count end) i
  ),
  buckets as (
    select row_number() over (order by b) - 1 as n, b,
           greatest(b, from_time) as s,
           least(coalesce(lead(b) over (order by b), to_time), to_time) as e
    from (select distinct b from starts where b < to_time and (g <> 'hour' or extract(minute from b) = 0)) d
  ),
  edges as (
    select bk.*,
           date_trunc('hour', bk.s, 'UTC') + case when date_trunc('hour', bk.s, 'UTC') = bk.s then interval '0' else interval '1 hour' end as hs,
           date_trunc('hour', bk.e, 'UTC') as he,
           date_trunc('day', bk.s, 'UTC') + case when date_trunc('day', bk.s, 'UTC') = bk.s then interval '0' else interval '1 day' end as ds,
           date_trunc('day', bk.e, 'UTC') as de
    from buckets bk
    -- The buckets before the one holding from_time end before it.
    where bk.s < bk.e
  )
  select ed.n, ed.b, to_char(ed.b, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'), v.level, v.ps, v.pe
  from edges ed
  cross join lateral (values
    ('day', ed.ds, ed.de, ed.ds < ed.de),
    ('hour', ed.hs, case when ed.ds < ed.de then ed.ds else ed.he end, true),
    ('hour', ed.de, ed.he, ed.ds < ed.de),
    ('minute', ed.s, least(ed.hs, ed.e), true),
    ('minute', ed.he, ed.e, ed.hs <= ed.he)
  ) v(level, ps, pe, used)
  where v.used and v.ps < v.pe;
end
$$;
