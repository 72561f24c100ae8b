-- Refuses (22023, naming granularity) more than 10,000 buckets: bucket_count as
-- headcount_check_stats_arguments returns it (an upper bound: a local day may be 23 hours).
create or replace function headcount_check_bucket_count(g text, bucket_count bigint)
returns void
language plpgsql immutable
as $$
begin
  if bucket_count > 10002 then
    raise exception 'granularity % gives more than 10000 buckets over this range: use a coarser one or a shorter range', g
      using errcode = '22023', column = 'granularity';
  end if;
end
$$;
