-- postgres mode: adds stored events to every aggregate table (minutes, hours and days,
-- per kind and page and in site totals: the tables of parts under events_minutely,
-- events_hourly, events_daily, totals_hourly, totals_daily), called by
-- headcount_events_inserted in the transaction that stores them: they are never behind
-- the raw events. Each row it writes is a part of its own (part = this transaction's id:
-- a small sketch of its events), which headcount_fold_events folds into part 0 within a
-- second or so; reads union a key's rows. The conflict is this transaction's second
-- statement on the same key.
create or replace function headcount_apply_events(inserted events[]) returns void
language plpgsql
as $$
declare
  this_part bigint := txid_current();
begin
  insert into events_minutely_parts as a (site, bucket, kind, page, part, events, users)
  select site, date_trunc('minute', time, 'UTC'), kind, page, this_part, sum(weight),
         hll_add_agg(hll_hash_text(user_id, p.seed), p.log2m, p.regwidth, p.expthresh, p.sparseon)
  from unnest(inserted) e, headcount_sketch_parameters() p
  group by 1, 2, 3, 4
  on conflict (site, bucket, kind, page, part) do update
  set events = a.events + excluded.events,
      users = hll_union(a.users, excluded.users);

  insert into events_hourly_parts as a (site, bucket, kind, page, part, events, users)
  select site, date_trunc('hour', time, 'UTC'), kind, page, this_part, sum(weight),
         hll_add_agg(hll_hash_text(user_id, p.seed), p.log2m, p.regwidth, p.expthresh, p.sparseon)
  from unnest(inserted) e, headcount_sketch_parameters() p
  group by 1, 2, 3, 4
  on conflict (site, bucket, kind, page, part) do update
  set events = a.events + excluded.events,
      users = hll_union(a.users, excluded.users);

  insert into events_daily_parts as a (site, bucket, kind, page, part, events, users)
  select site, date_trunc('day', time, 'UTC'), kind, page, this_part, sum(weight),
         hll_add_agg(hll_hash_text(user_id, p.seed), p.log2m, p.regwidth, p.expthresh, p.sparseon)
  from unnest(inserted) e, headcount_sketch_parameters() p
  group by 1, 2, 3, 4
  on conflict (site, bucket, kind, page, part) do update
  set events = a.events + excluded.events,
      users = hll_union(a.users, excluded.users);

  insert into totals_hourly_parts as a (site, bucket, part, events, users)
  select site, date_trunc('hour', time, 'UTC'), this_part, sum(weight),
         hll_add_agg(hll_hash_text(user_id, p.seed), p.log2m, p.regwidth, p.expthresh, p.sparseon)
  from unnest(inserted) e, headcount_sketch_parameters() p
  group by 1, 2
  on conflict (site, bucket, part) do update
  set events = a.events + excluded.events,
      users = hll_union(a.users, excluded.users);

  insert into totals_daily_parts as a (site, bucket, part, events, users)
  select site, date_trunc('day', time, 'UTC'), this_part, sum(weight),
         hll_add_agg(hll_hash_text(user_id, p.seed), p.log2m, p.regwidth, p.expthresh, p.sparseon)
  from unnest(inserted) e, headcount_sketch_parameters() p
  group by 1, 2
  on conflict (site, bucket, part) do update
  set events = a.events + excluded.events,
      users = hll_union(a.users, excluded.users);
end
$$;
