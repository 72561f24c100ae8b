-- The hll parameters of every users sketch headcount stores, stated once: log2m 14
-- (16384 registers, standard error 0.81 %), regwidth 5, expthresh -1 (an exact list of
-- users while smaller than a full sketch), sparse on, hash seed 0. Never change them:
-- hll only unions sketches of equal parameters, and the stored sketches (and
-- headcount_settings.hll_*) have these.
--
-- A one-row set-returning sql function, so that the planner inlines it: in
--   from new_events, headcount_sketch_parameters() p
-- p.log2m and the others become constants, and the plan is the one of literal values.
create or replace function headcount_sketch_parameters()
returns table (log2m integer, regwidth integer, expthresh bigint, sparseon integer, seed integer)
language sql immutable parallel safe
as $$
  select 14, 5, -1::bigint, 1, 0
$$;
