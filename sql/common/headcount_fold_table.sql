-- Folds the parts of one table of parts (rows of part <> 0: the roller's, or the
-- inserts') into each key's row of part 0, in one statement: a read sees a key's events
-- in its parts or in part 0, never both, never neither. `key` is the table's key
-- without part, as SQL ("site, bucket"). Returns how many rows of part 0 it wrote.
-- Called by headcount_fold_parts and headcount_fold_events, which say when and under
-- which lock.
create or replace function headcount_fold_table(name text, key text) returns bigint
language plpgsql
as $$
declare
  folded bigint;
begin
  execute format($f$
    with parts as (delete from %1$I where part <> 0 returning *)
    insert into %1$I as o (%2$s, part, events, users)
    select %2$s, 0, sum(events)::bigint, hll_union_agg(users)
    from parts
    group by %2$s
    order by %2$s
    on conflict (%2$s, part) do update
    set events = o.events + excluded.events,
        users = hll_union(o.users, excluded.users)
  $f$, name, key);
  get diagnostics folded = row_count;
  return folded;
end
$$;
