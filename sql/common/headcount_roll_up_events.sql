-- The roller's move (headcount_roll_up calls it under the roller's lock, in its
-- transaction): up to max_rows queued events (headcount_pending), of one_site only unless
-- it is null, into the dimension rollups. Returns how many it moved. Every statement
-- that reads or writes a distributed table names one site or reads the session's own
-- temporary tables, so that Citus plans them too (sql/citus/headcount_roll_up_batch.sql calls
-- it site by site).
--
-- Per event it adds one value per standard dimension (headcount_dimensions) and one per
-- declared property or combination of its site (headcount_rollups), per UTC day, and per
-- UTC hour from headcount_rollup_hours_from() on (a week: older hours are read raw),
-- under its kind and under '*' (every kind); and the event to its site's and kind's UTC
-- quarter hour (kinds_15m). A site, set of dimensions and UTC day holds at most
-- headcount_settings.rollup_max_values distinct (kind, values): the batch that passes it
-- marks the day overflowed (headcount_rollup_days) and deletes what the day held, and
-- from then on reads answer that day of that set from raw events (or refuse beyond their
-- retention). A property with an id per event costs its day's cap, not a row per event.
--
-- It appends, it does not rewrite: every row it writes is a part of its own (part = the
-- roll's start, epoch ms), holding what this roll moved; headcount_fold_parts folds the
-- parts into part 0 every few minutes. Reads union a key's rows like the rows of a range.
-- The rows of every kind of an ended UTC week are also kept in one (dimensions_weekly):
-- built once by headcount_build_weeks, then added to by the rolls of its late events.
create or replace function headcount_roll_up_events(max_rows integer, one_site text)
returns integer
language plpgsql
set timezone = 'UTC'
as $$
declare
  cap integer;
  moved integer;
  sorting text;
  -- The (site, set of dimensions, day) of this batch that are past the cap.
  over_sites text[];
  over_dims text[];
  over_days timestamptz[];
  this_part bigint := (extract(epoch from now()) * 1000)::bigint;
  -- Once: as a filter, the function ran per row (34 µs each, 15 of a 40 ms roll).
  hours_from timestamptz := headcount_rollup_hours_from();
begin
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

  if one_site is null then
    with taken as (
      delete from headcount_pending q
      where q.ctid = any (array(select ctid from headcount_pending limit max_rows))
      returning q.*
    )
    insert into headcount_moved select * from taken;
  else
    -- Citus takes rows by tid only within one shard: the statement names its site.
    with taken as (
      delete from headcount_pending q
      where q.site = one_site and q.ctid = any (array(select ctid from headcount_pending where site = one_site limit max_rows))
      returning q.*
    )
    insert into headcount_moved select * from taken;
  end if;
  get diagnostics moved = row_count;
  if moved = 0 then
    return 0;
  end if;

  -- Events without any dimension or property (the seed APIs' and most server-side ones)
  -- are grouped by site, hour and kind first, and only then give each rollup its "no
  -- value" row: ten rows per event to sort and aggregate were most of the roller's work
  -- for GET /collect. Keys both kinds of events make are unioned.
  -- Hashed, not sorted: 11 or more rows per event to group (for 20,000 events with every
  -- standard dimension and 3 declared rollups, the roll took 1,455 ms of PostgreSQL CPU
  -- with arrays sorted as the key, 965 ms with text keys hashed: docs/benchmarks.md,
  -- "Roller"). For this statement only: elsewhere (the upserts' groups of hll unions)
  -- hashing their 128 KB aggregate states cost more than sorting.
  sorting := current_setting('enable_sort');
  perform set_config('enable_sort', 'off', true);
  insert into headcount_moved_groups (site, dims, hour, kind, vals, events, users)
  with moved as (
    -- Each event's UTC hour computed once: date_trunc of a timestamptz costs ~0.6 µs, and
    -- computed in the groups below it ran for each of the 14 rows an event became. With
    -- the rollups' names split once (below): 525 ms for this statement against 616, for
    -- 20,000 events with every dimension and 3 declared rollups (6 rounds, medians; most
    -- of it the names); docs/benchmarks.md, "Roller".
    select m.*, date_trunc('hour', m.time) as hour,
           num_nonnulls(m.referrer, m.utm_source, m.utm_medium, m.utm_campaign, m.utm_content, m.utm_term,
                        m.country, m.device, m.browser, m.os, m.source, m.props) = 0 as plain
    from headcount_moved m
  ),
  plain as (
    select m.site, m.hour as hour, m.kind, sum(m.weight) as events,
           hll_add_agg(m.user_hash, p.log2m, p.regwidth, p.expthresh, p.sparseon) as users
    from moved m, headcount_sketch_parameters() p
    where m.plain
    group by 1, 2, 3
  ),
  groups as (
    -- The standard dimensions: one value each, grouped as text and made the one-value
    -- array of the rollups after grouping (grouping 11 rows per event by an array took
    -- most of the roller's time: docs/benchmarks.md, "Roller").
    select m.site, v.dims, m.hour as hour, m.kind, array[v.val] as vals, sum(m.weight) as events,
           hll_add_agg(m.user_hash, p.log2m, p.regwidth, p.expthresh, p.sparseon) as users
    from moved m
    cross join lateral (
      values
        ('referrer', m.referrer), ('utm_source', m.utm_source), ('utm_medium', m.utm_medium),
        ('utm_campaign', m.utm_campaign), ('utm_content', m.utm_content), ('utm_term', m.utm_term),
        ('country', m.country), ('device', m.device), ('browser', m.browser), ('os', m.os),
        ('source', m.source)
    ) v(dims, val),
    headcount_sketch_parameters() p
    where not m.plain
    group by m.site, v.dims, m.hour, m.kind, v.val
    union all
    -- Declared properties and combinations (at most 3 dimensions each).
    select m.site, r.dims, m.hour as hour, m.kind,
           (array[headcount_dimension_value(r.names[1], m.referrer, m.utm_source, m.utm_medium, m.utm_campaign, m.utm_content,
                                            m.utm_term, m.country, m.device, m.browser, m.os, m.source, m.props),
                  headcount_dimension_value(r.names[2], m.referrer, m.utm_source, m.utm_medium, m.utm_campaign, m.utm_content,
                                            m.utm_term, m.country, m.device, m.browser, m.os, m.source, m.props),
                  headcount_dimension_value(r.names[3], m.referrer, m.utm_source, m.utm_medium, m.utm_campaign, m.utm_content,
                                            m.utm_term, m.country, m.device, m.browser, m.os, m.source, m.props)])[1:cardinality(r.names)] as vals,
           sum(m.weight) as events, hll_add_agg(m.user_hash, p.log2m, p.regwidth, p.expthresh, p.sparseon) as users
    from moved m
    -- offset 0: the names split once per rollup, not in each of the joined rows' values.
    join (select r.site, r.dims, string_to_array(r.dims, ',') as names from headcount_rollups r offset 0) r on r.site = m.site,
    headcount_sketch_parameters() p
    where not m.plain
    group by 1, 2, 3, 4, 5
    union all
    select g.site, r.dims, g.hour, g.kind, r.vals, g.events, g.users
    from plain g
    cross join lateral (
      select d.dims, array[null::text] as vals from unnest(headcount_dimensions()) d(dims)
      union all
      select r.dims, array_fill(null::text, array[cardinality(string_to_array(r.dims, ','))])
      from headcount_rollups r where r.site = g.site
    ) r
  )
  select g.site, g.dims, g.hour, g.kind, g.vals, sum(g.events), hll_union_agg(g.users)
  from groups g
  group by 1, 2, 3, 4, 5;
  perform set_config('enable_sort', sorting, true);

  -- The values each batch adds to a day, counted once; past the cap the day overflows.
  -- Shaped for Citus too: an anti-join, not a correlated `not exists` (Citus refuses one
  -- over a CTE), and the overflowed days' rows deleted by statements of their own (Citus
  -- refuses `day + interval` on a column in a delete that joins a distributed table).
  -- A day that overflowed before has no day rows left, so its values count as added
  -- again and it is returned here too: every overflowed day of the batch is listed.
  with day_keys as (
    select distinct g.site, g.dims, date_trunc('day', g.hour) as day, g.kind, g.vals
    from headcount_moved_groups g
  ),
  added as (
    select k.site, k.dims, k.day, count(*)::integer as added
    from day_keys k
    left join dimensions_daily d
      on d.site = k.site and d.dims = k.dims and d.bucket = k.day and d.kind = k.kind and d.vals = k.vals
    where d.site is null
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
  )
  select array_agg(c.site), array_agg(c.dims), array_agg(c.day)
  into over_sites, over_dims, over_days
  from counted c
  where c.overflowed;
  -- Rare (a day past the cap): nothing to run otherwise, not even a scan of the groups.
  if over_days is not null then
    for i in 1 .. cardinality(over_days) loop
      delete from dimensions_hourly h
      where h.site = over_sites[i] and h.dims = over_dims[i] and h.bucket >= over_days[i] and h.bucket < over_days[i] + interval '1 day';
      delete from dimensions_daily d
      where d.site = over_sites[i] and d.dims = over_dims[i] and d.bucket = over_days[i];
    end loop;
    delete from headcount_moved_groups g
    using unnest(over_sites, over_dims, over_days) o(site, dims, day)
    where o.site = g.site and o.dims = g.dims and o.day = date_trunc('day', g.hour);
  end if;

  -- Every kind in one row (kind '*', which no kind can be), for the reads that neither
  -- filter nor group by kind: one sketch per bucket and value to union instead of one
  -- per kind. Not counted against the cap: it holds no value the kinds' rows do not.
  insert into headcount_moved_groups (site, dims, hour, kind, vals, events, users)
  select g.site, g.dims, g.hour, '*', g.vals, sum(g.events), hll_union_agg(g.users)
  from headcount_moved_groups g
  group by g.site, g.dims, g.hour, g.vals;

  -- This roll's parts: new rows, one per key (a roll cannot meet one of its own; two
  -- rolls starting in the same millisecond would be merged, not refused).
  insert into dimensions_hourly as h (site, dims, bucket, kind, vals, part, events, users)
  select g.site, g.dims, g.hour, g.kind, g.vals, this_part, g.events, g.users
  from headcount_moved_groups g
  where g.hour >= hours_from
  on conflict (site, dims, bucket, kind, vals, part) do update
  set events = h.events + excluded.events,
      users = hll_union(h.users, excluded.users);

  insert into dimensions_daily as d (site, dims, bucket, kind, vals, part, events, users)
  select g.site, g.dims, date_trunc('day', g.hour), g.kind, g.vals, this_part, sum(g.events)::bigint, hll_union_agg(g.users)
  from headcount_moved_groups g
  group by 1, 2, 3, 4, 5
  on conflict (site, dims, bucket, kind, vals, part) do update
  set events = d.events + excluded.events,
      users = hll_union(d.users, excluded.users);

  -- The late events of weeks already built (headcount_build_weeks), into their week rows.
  -- Parts too: a back-filled month would otherwise rewrite every busy value's week row
  -- at every roll (1.8 GB of dead rows for 40 MB of weeks after the 31-day bench's drain).
  insert into dimensions_weekly as w (site, dims, bucket, vals, part, events, users)
  select g.site, g.dims, date_trunc('week', g.hour), g.vals, this_part, sum(g.events)::bigint, hll_union_agg(g.users)
  from headcount_moved_groups g
  join headcount_rollup_weeks b on b.site = g.site and b.week = date_trunc('week', g.hour)
  where g.kind = '*'
  group by 1, 2, 3, 4
  on conflict (site, dims, bucket, vals, part) do update
  set events = w.events + excluded.events,
      users = hll_union(w.users, excluded.users);

  -- Every event from quarters_from on, per site, UTC quarter hour and kind, and under '*'
  -- (every kind): the ends of the local hours and days of zones with a +05:30 or +05:45
  -- offset (headcount_stats).
  insert into kinds_15m as q (site, bucket, kind, part, events, users)
  select m.site, date_bin('15 minutes', m.time, timestamptz 'epoch'), case when grouping(m.kind) = 1 then '*' else m.kind end,
         this_part, sum(m.weight)::bigint, hll_add_agg(m.user_hash, p.log2m, p.regwidth, p.expthresh, p.sparseon)
  from headcount_moved m, headcount_sketch_parameters() p
  where m.time >= (select s.quarters_from from headcount_settings s)
  group by grouping sets ((m.site, date_bin('15 minutes', m.time, timestamptz 'epoch'), m.kind),
                         (m.site, date_bin('15 minutes', m.time, timestamptz 'epoch')))
  on conflict (site, bucket, kind, part) do update
  set events = q.events + excluded.events,
      users = hll_union(q.users, excluded.users);

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

comment on function headcount_roll_up_events(integer, text) is
  'headcount: headcount_roll_up''s move, under its lock: up to max_rows queued events (of one_site only, unless null) into the dimension rollups as parts; returns how many';
