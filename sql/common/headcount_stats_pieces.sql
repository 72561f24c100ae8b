-- The local buckets of [from_time, to_time) in timezone and the UTC pieces that tile
-- each: (bucket number, bucket start, its label, level, [ps, pe)), level day, hour,
-- quarter (15 minutes) or minute: whole UTC days, then whole UTC hours at either end,
-- then whole UTC quarter hours, then minutes. The zone is set for
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
  ),
  ends as (
    -- The part before the first whole UTC hour, [s, ae), and the one after the last, [he,
    -- e) when there is a whole hour: each tiled with whole UTC quarter hours where they
    -- fit (q1 to q2, and he to q3), minutes around them.
    select ed.*, x.ae,
           date_bin('15 minutes', ed.s, timestamptz 'epoch')
             + case when date_bin('15 minutes', ed.s, timestamptz 'epoch') = ed.s then interval '0' else interval '15 minutes' end as q1,
           date_bin('15 minutes', x.ae, timestamptz 'epoch') as q2,
           greatest(ed.he, date_bin('15 minutes', ed.e, timestamptz 'epoch')) as q3
    from edges ed
    cross join lateral (select least(ed.hs, ed.e) as ae) x
  )
  select en.n, en.b, to_char(en.b, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'), v.level, v.ps, v.pe
  from ends en
  cross join lateral (values
    ('day', en.ds, en.de, en.ds < en.de),
    ('hour', en.hs, case when en.ds < en.de then en.ds else en.he end, true),
    ('hour', en.de, en.he, en.ds < en.de),
    ('minute', en.s, case when en.q1 < en.q2 then en.q1 else en.ae end, true),
    ('quarter', en.q1, en.q2, en.q1 < en.q2),
    ('minute', en.q2, en.ae, en.q1 < en.q2),
    ('quarter', en.he, en.q3, en.hs <= en.he),
    ('minute', en.q3, en.e, en.hs <= en.he)
  ) v(level, ps, pe, used)
  where v.used and v.ps < v.pe;
end
$$;
