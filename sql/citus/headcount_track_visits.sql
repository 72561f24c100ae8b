-- citus mode: visits are not kept yet. postgres mode's statement (sql/common/) cannot be
-- planned by Citus ("cannot push down this subquery: Offset clause is currently
-- unsupported when a lateral subquery references a column from complex subqueries, CTEs
-- or local tables"); it runs when called once per site, but a shape both modes can share
-- without costing the single-node modes is not there yet (note6-21). Reads of visit
-- metrics are refused (headcount_visit_stats) rather than answered from an empty table.
create or replace function headcount_track_visits(inserted events[]) returns void
language plpgsql
as $$
begin
end
$$;
