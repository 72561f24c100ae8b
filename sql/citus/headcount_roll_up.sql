-- citus mode: the roller (sql/common/headcount_roll_up.sql) site by site. Citus takes
-- queued rows by tid only within one shard, so each move (headcount_roll_up_events) names
-- one site: its statements on distributed tables are routed to the shard holding it. All
-- the sites' moves are in one transaction, as one roll is in the other modes; the lock is
-- the coordinator's, where every session of the service runs its statements.
create or replace function headcount_roll_up(max_rows integer default 20000)
returns integer
language plpgsql
as $$
declare
  moved integer := 0;
  one text;
begin
  -- One roller at a time: two would upsert the same rollup rows and day counts.
  if not pg_try_advisory_xact_lock(1751937123) then
    return 0;
  end if;
  for one in
    select q.site from headcount_pending q group by q.site order by q.site
  loop
    exit when moved >= max_rows;
    moved := moved + headcount_roll_up_events(max_rows - moved, one);
    -- The session's tables of one site's move, emptied for the next site's.
    truncate headcount_moved, headcount_moved_groups;
  end loop;
  perform headcount_fold_parts();
  perform headcount_build_weeks();
  return moved;
end
$$;

comment on function headcount_roll_up(integer) is
  'headcount: moves up to max_rows queued events (headcount_pending) into dimensions_hourly, dimensions_daily and kinds_15m in one transaction, site by site (citus mode), as parts of their own (folded by headcount_fold_parts); returns how many (0 when none, or another session is rolling up)';
