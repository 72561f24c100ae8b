-- Builds the week rows of the dimension rollups (dimensions_weekly) of up to max_weeks
-- ended UTC weeks (Monday to Monday) that are not built yet, newest first, one site and
-- week at a time: the union of that week's day rows of every kind ('*', part 0 and
-- parts alike) per set of dimensions and values, recorded in headcount_rollup_weeks. From
-- then on headcount_roll_up adds that week's late events to them, and reads use a built
-- week where none of its days is answered from raw events (headcount_stats).
-- Weeks that start before the day sketches' retention are not built (their first days
-- are gone). Every roll calls it (headcount_roll_up); returns how many weeks it built.
create or replace function headcount_build_weeks(max_weeks integer default 1)
returns integer
language plpgsql
set timezone = 'UTC'
as $$
declare
  w record;
  built integer := 0;
begin
  -- The roller's lock: no roll moves events into the days being read.
  if not pg_try_advisory_xact_lock(1751937123) then
    return 0;
  end if;
  for w in
    select s.site, wk.week
    from headcount_sites s
    cross join headcount_settings st
    cross join lateral generate_series(
      greatest(date_trunc('week', s.first_event), date_trunc('week', date_trunc('day', now() - st.sketch_retention) + interval '6 days')),
      date_trunc('week', now()) - interval '7 days',
      interval '7 days'
    ) wk(week)
    -- An anti-join: Citus refuses a correlated `not exists` over a reference table.
    left join headcount_rollup_weeks b on b.site = s.site and b.week = wk.week
    where b.site is null
    order by wk.week desc, s.site
    limit max_weeks
  loop
    insert into dimensions_weekly (site, dims, bucket, vals, events, users)
    select d.site, d.dims, w.week, d.vals, sum(d.events)::bigint, hll_union_agg(d.users)
    from dimensions_daily d
    where d.site = w.site and d.kind = '*' and d.bucket >= w.week and d.bucket < w.week + interval '7 days'
    group by d.site, d.dims, d.vals;
    insert into headcount_rollup_weeks (site, week) values (w.site, w.week);
    built := built + 1;
  end loop;
  return built;
end
$$;

comment on function headcount_build_weeks(integer) is
  'headcount: builds the dimensions_weekly rows of up to max_weeks ended UTC weeks not built yet (newest first) from their dimensions_daily rows of kind *; returns how many';
