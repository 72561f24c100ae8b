-- Analyzes the tables of headcount's schema that hold rows but have never been analyzed
-- (by anyone, autovacuum included): at least min_rows inserted or live. Returns how many
-- it analyzed. The roller calls it every 30 s (src/db/roller.ts); once a table is
-- analyzed, autovacuum keeps its statistics and this skips it.
--
-- Why: a session caches the plans of the statements a write runs (headcount_track_visits'
-- is one), and PostgreSQL plans a table that has never been analyzed by its size at that
-- moment. The plans cached while a fresh database's tables were nearly empty looked visits
-- up by headcount_visits_started_idx (site only) and deleted them by a sequential scan:
-- every batch then read every visit (56 ms a batch at 8,000 visits, growing with the
-- table), until an ANALYZE invalidated those plans, which autovacuum does after its first
-- naptime (a minute by default, never when it is off). The cost of this check once every
-- table is analyzed: one read of pg_stat_user_tables.
create or replace function headcount_analyze_new(min_rows bigint default 1000)
returns integer
language plpgsql
as $$
declare
  t regclass;
  analyzed integer := 0;
begin
  for t in
    select s.relid::regclass
    from pg_stat_user_tables s
    join pg_class c on c.oid = s.relid
    where s.schemaname = current_schema()
      and pg_has_role(c.relowner, 'USAGE')
      and s.last_analyze is null and s.last_autoanalyze is null
      and greatest(s.n_live_tup, s.n_mod_since_analyze) >= min_rows
    order by s.relid
  loop
    execute format('analyze %s', t);
    analyzed := analyzed + 1;
  end loop;
  return analyzed;
end
$$;
