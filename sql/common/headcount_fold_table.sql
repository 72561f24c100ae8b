-- Folds the parts of one table of parts (rows of part <> 0: the roller's, or the
-- inserts') into each key's row of part 0, in the calling transaction: a read sees a
-- key's events in its parts or in part 0, never both, never neither. `key` is the table's
-- key without part, as SQL ("site, bucket"); only rows of buckets from `since` on are
-- folded (the others stay parts). Returns how many rows of part 0 it wrote.
-- Called by headcount_fold_parts and headcount_fold_events, which say when and under
-- which lock (one fold of a table at a time).
--
-- Three statements, each on its own snapshot: the part numbers committed now, then their
-- rows added to part 0, then those rows deleted. They are the same rows in both: a part
-- holds the rows of one transaction (an insert's, or a roll's), visible all at once from
-- its commit, and only a fold removes them; a part committed meanwhile is left for the
-- next fold. One statement (a delete returning the parts, then an insert of their union)
-- did the same, but TimescaleDB's RETURNING from a hypertable cost 57 ms for 3,300 parts
-- against 10 ms for the delete without it (docs/benchmarks.md, "Insert parts").
create or replace function headcount_fold_table(name text, key text, since timestamptz default '-infinity')
returns bigint
language plpgsql
as $$
declare
  folded bigint;
  parts bigint[];
begin
  execute format('select array(select distinct part from %I where part <> 0 and bucket >= $1)', name) into parts using since;
  if cardinality(parts) = 0 then
    return 0;
  end if;
  execute format($f$
    insert into %1$I as o (%2$s, part, events, users)
    select %2$s, 0, sum(events)::bigint, hll_union_agg(users)
    from %1$I
    where part = any ($1) and bucket >= $2
    group by %2$s
    order by %2$s
    on conflict (%2$s, part) do update
    set events = o.events + excluded.events,
        users = hll_union(o.users, excluded.users)
  $f$, name, key) using parts, since;
  get diagnostics folded = row_count;
  execute format('delete from %I where part = any ($1) and bucket >= $2', name) using parts, since;
  return folded;
end
$$;
