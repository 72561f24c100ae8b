-- citus mode: one roll's move (sql/common/headcount_roll_up_batch.sql) site by site.
-- Citus takes queued rows by tid only within one shard, so each move
-- (headcount_roll_up_events) names one site: its statements on distributed tables are
-- routed to the shard holding it. All the sites' moves are in the roll's one transaction,
-- as one roll is in the other modes (the coordinator commits them together); the roller's
-- lock is the coordinator's, where every session of the service runs its statements.
create or replace function headcount_roll_up_batch(max_rows integer)
returns integer
language plpgsql
as $$
declare
  moved integer := 0;
  one text;
begin
  for one in
    select q.site from headcount_pending q group by q.site order by q.site
  loop
    exit when moved >= max_rows;
    moved := moved + headcount_roll_up_events(max_rows - moved, one);
    -- The session's tables of one site's move, emptied for the next site's.
    truncate headcount_moved, headcount_moved_groups;
  end loop;
  return moved;
end
$$;
