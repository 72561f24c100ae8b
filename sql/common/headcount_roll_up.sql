-- The roller: moves up to max_rows queued events (headcount_pending) into the dimension
-- rollups in one transaction, so that every read sees each event either queued or rolled
-- up, never both, never neither. Returns how many it moved (0: nothing queued, or another
-- session is rolling up). The service calls it in a loop (src/db/roller.ts); psql may too.
--
-- Per event it adds one value per standard dimension (headcount_dimensions) and one per
-- declared property or combination of its site (headcount_rollups), per UTC hour and
-- day. A site, set of dimensions and UTC day holds at most
-- headcount_settings.rollup_max_values distinct (kind, values): the batch that passes it
-- marks the day overflowed (headcount_rollup_days) and deletes what the day held, and
-- from then on reads answer that day of that set from raw events (or refuse beyond their
-- retention). A property with an id per event costs its day's cap, not a row per event.
create or replace function headcount_roll_up(max_rows integer default 20000)
returns integer
language plpgsql
set timezone = 'UTC'
as $$
declare
  cap integer;
  moved integer;
begin
  -- One roller at a time: two would upsert the same rollup rows and day counts.
  if not pg_try_advisory_xact_lock(1751937123) then
    return 0;
  end if;
  select s.rollup_max_values into cap from headcount_settings s;

  -- A session's copy made before a migration added a column to headcount_pending (a
  -- roller connection of the release before) would refuse the queue's rows: made again.
  if (select count(*) from pg_attribute a where a.attrelid = to_regclass('pg_temp.headcount_moved') and a.attnum > 0 and not a.attisdropped)
     <> (select count(*) from pg_attribute a where a.attrelid = 'headcount_pending'::regclass and a.attnum > 0 and not a.attisdropped) then
    drop table if exists pg_temp.headcount_moved;
  end if;
  create temp table if not exists headcount_moved (like headcount_pending) on commit delete rows;
  create temp table if not exists headcount_moved_groups (
    site text, dims text, hour timestamptz, kind text, vals text[], events bigint, users hll
  ) on commit delete rows;

  with taken as (
    delete from headcount_pending q
    where q.ctid = any (array(select ctid from headcount_pending limit max_rows))
    returning q.*
  )
  insert into headcount_moved select * from taken;
  get diagnostics moved = row_count;
  if moved = 0 then
    return 0;
  end if;

  insert into headcount_moved_groups (site, dims, hour, kind, vals, events, users)
  select m.site, d.dims, date_trunc('hour', m.time), m.kind, d.vals, sum(m.weight),
         hll_add_agg(m.user_hash, p.log2m, p.regwidth, p.expthresh, p.sparseon)
  from headcount_moved m
  cross join lateral (
    select v.dims, v.vals
    from (values
      ('referrer', array[m.referrer]), ('utm_source', array[m.utm_source]), ('utm_medium', array[m.utm_medium]),
      ('utm_campaign', array[m.utm_campaign]), ('utm_content', array[m.utm_content]), ('utm_term', array[m.utm_term]),
      ('country', array[m.country]), ('device', array[m.device]), ('browser', array[m.browser]), ('os', array[m.os]),
      ('source', array[m.source])
    ) v(dims, vals)
    union all
    -- Declared properties and combinations (at most 3 dimensions each).
    select r.dims,
           (array[headcount_dimension_value(r.names[1], m.referrer, m.utm_source, m.utm_medium, m.utm_campaign, m.utm_content,
                                            m.utm_term, m.country, m.device, m.browser, m.os, m.source, m.props),
                  headcount_dimension_value(r.names[2], m.referrer, m.utm_source, m.utm_medium, m.utm_campaign, m.utm_content,
                                            m.utm_term, m.country, m.device, m.browser, m.os, m.source, m.props),
                  headcount_dimension_value(r.names[3], m.referrer, m.utm_source, m.utm_medium, m.utm_campaign, m.utm_content,
                                            m.utm_term, m.country, m.device, m.browser, m.os, m.source, m.props)])[1:cardinality(r.names)]
    from (select r.dims, string_to_array(r.dims, ',') as names from headcount_rollups r where r.site = m.site) r
  ) d,
  headcount_sketch_parameters() p
  group by 1, 2, 3, 4, 5;

  -- The values each batch adds to a day, counted once; past the cap the day overflows.
  with day_keys as (
    select distinct g.site, g.dims, date_trunc('day', g.hour) as day, g.kind, g.vals
    from headcount_moved_groups g
  ),
  added as (
    select k.site, k.dims, k.day, count(*)::integer as added
    from day_keys k
    where not exists (
      select from dimensions_daily d
      where d.site = k.site and d.dims = k.dims and d.bucket = k.day and d.kind = k.kind and d.vals = k.vals
    )
    group by 1, 2, 3
  ),
  counted as (
    insert into headcount_rollup_days as o (site, dims, day, value_count, overflowed)
    select a.site, a.dims, a.day, a.added, a.added > cap
    from added a
    order by 1, 2, 3
    on conflict (site, dims, day) do update
    set value_count = o.value_count + excluded.value_count,
        overflowed = o.overflowed or o.value_count + excluded.value_count > cap
    returning o.site, o.dims, o.day, o.overflowed
  ),
  emptied_hours as (
    delete from dimensions_hourly h
    using counted c
    where c.overflowed and h.site = c.site and h.dims = c.dims and h.bucket >= c.day and h.bucket < c.day + interval '1 day'
  )
  delete from dimensions_daily d
  using counted c
  where c.overflowed and d.site = c.site and d.dims = c.dims and d.bucket = c.day;

  delete from headcount_moved_groups g
  using headcount_rollup_days o
  where o.overflowed and o.site = g.site and o.dims = g.dims and o.day = date_trunc('day', g.hour);

  -- Rows are locked in one order (only one roller runs, but a backfill in psql may not).
  insert into dimensions_hourly as h (site, dims, bucket, kind, vals, events, users)
  select g.site, g.dims, g.hour, g.kind, g.vals, g.events, g.users
  from headcount_moved_groups g
  order by 1, 2, 3, 4, 5
  on conflict (site, dims, bucket, kind, vals) do update
  set events = h.events + excluded.events,
      users = hll_union(h.users, excluded.users);

  insert into dimensions_daily as d (site, dims, bucket, kind, vals, events, users)
  select g.site, g.dims, date_trunc('day', g.hour), g.kind, g.vals, sum(g.events)::bigint, hll_union_agg(g.users)
  from headcount_moved_groups g
  group by 1, 2, 3, 4, 5
  order by 1, 2, 3, 4, 5
  on conflict (site, dims, bucket, kind, vals) do update
  set events = d.events + excluded.events,
      users = hll_union(d.users, excluded.users);

  insert into headcount_sites as s (site, first_event, last_event, events)
  select m.site, min(m.time), max(m.time), sum(m.weight)::bigint
  from headcount_moved m
  group by 1
  order by 1
  on conflict (site) do update
  set first_event = least(s.first_event, excluded.first_event),
      last_event = greatest(s.last_event, excluded.last_event),
      events = s.events + excluded.events;
  return moved;
end
$$;

comment on function headcount_roll_up(integer) is
  'headcount: moves up to max_rows queued events (headcount_pending) into dimensions_hourly and dimensions_daily in one transaction; returns how many (0 when none, or another session is rolling up)';
