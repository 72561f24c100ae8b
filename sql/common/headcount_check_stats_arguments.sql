-- The arguments every stats function checks alike (headcount_stats, headcount_visit_stats):
-- site, the range, granularity, limit and compare. Returns the granularity (lowercase),
-- its step and an upper bound of the number of buckets, for headcount_stats_pieces (which
-- headcount_check_bucket_count refuses past 10,000).
-- Bad arguments raise SQLSTATE 22023 with COLUMN set to the query parameter's name.
create or replace function headcount_check_stats_arguments(
  site text, from_time timestamptz, to_time timestamptz, granularity text, group_limit integer, compare text
)
returns table (g text, step interval, bucket_count bigint)
language plpgsql stable
set timezone = 'UTC'
as $$
#variable_conflict use_variable
begin
  g := lower(coalesce(granularity, 'total'));
  if site is null or site !~ '^[a-z0-9][a-z0-9._-]{0,127}$' then
    raise exception 'site must be a site name: lowercase letters, digits, ".", "_" or "-", at most 128'
      using errcode = '22023', column = 'site';
  end if;
  if from_time is null or to_time is null then
    raise exception '% is required', case when from_time is null then 'from' else 'to' end
      using errcode = '22023', column = case when from_time is null then 'from' else 'to' end;
  end if;
  if from_time >= to_time then
    raise exception 'from must be before to (the range is half-open, [from, to))'
      using errcode = '22023', column = 'to';
  end if;
  if date_trunc('minute', from_time) <> from_time or date_trunc('minute', to_time) <> to_time then
    raise exception '% must be on a whole minute: the finest sketches are per minute',
      case when date_trunc('minute', from_time) <> from_time then 'from' else 'to' end
      using errcode = '22023', column = case when date_trunc('minute', from_time) <> from_time then 'from' else 'to' end;
  end if;
  if g not in ('minute', 'hour', 'day', 'week', 'month', 'total') then
    raise exception 'granularity must be minute, hour, day, week, month or total, not %', granularity
      using errcode = '22023', column = 'granularity';
  end if;
  if group_limit is null or group_limit < 1 or group_limit > 1000 then
    raise exception 'limit must be a whole number from 1 to 1000'
      using errcode = '22023', column = 'limit';
  end if;
  if compare is not null and compare <> 'previous_period' then
    raise exception 'compare must be previous_period, not %', compare
      using errcode = '22023', column = 'compare';
  end if;
  if g = 'minute' and to_time - from_time > interval '48 hours' then
    raise exception 'granularity minute covers at most 48 hours per request; this range is %', to_time - from_time
      using errcode = '22023', column = 'to';
  end if;
  step := case g when 'minute' then interval '1 minute' when 'hour' then interval '1 hour'
                 when 'day' then interval '1 day' when 'week' then interval '1 week'
                 when 'month' then interval '1 month' else to_time - from_time end;
  -- An upper bound of the number of buckets (a local day may be 23 hours).
  bucket_count := case g when 'total' then 1
    else floor(extract(epoch from to_time - from_time) / extract(epoch from step * 0.95))::bigint + 2 end;

  return next;
end
$$;
