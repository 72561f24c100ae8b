-- The SQL condition of parsed filters (headcount_parse_filters) over one relation:
-- columns maps each dimension to its SQL expression there (r.kind, r.vals[1],
-- (e.props ->> 'plan')). Values are quoted literals. Called by headcount_stats to build
-- its query; 'true' without filters.
create or replace function headcount_predicate(filters jsonb, columns jsonb)
returns text
language plpgsql immutable
as $$
declare
  f jsonb;
  x text;
  given text[];
  has_none boolean;
  cond text;
  conds text[] := '{}';
begin
  for f in select * from jsonb_array_elements(filters) loop
    x := columns ->> (f ->> 'dimension');
    if x is null then
      raise exception 'headcount_predicate: no column for %', f ->> 'dimension';
    end if;
    select coalesce(array_agg(v) filter (where v <> ''), '{}'), coalesce(bool_or(v = ''), false)
    into given, has_none
    from jsonb_array_elements_text(f -> 'values') v;
    cond := case f ->> 'op'
      when '==' then format('(%s = any (%L::text[])%s)', x, given, case when has_none then format(' or %s is null', x) else '' end)
      when '!=' then case when has_none then format('(%s is not null and not %s = any (%L::text[]))', x, x, given)
                          else format('(%s is null or not %s = any (%L::text[]))', x, x, given) end
      when '^=' then format('(%s)', (select string_agg(format('starts_with(%s, %L)', x, v), ' or ') from unnest(given) v))
      when '*=' then format('(%s)', (select string_agg(format('strpos(%s, %L) > 0', x, v), ' or ') from unnest(given) v))
    end;
    conds := conds || cond;
  end loop;
  return coalesce(nullif(array_to_string(conds, ' and '), ''), 'true');
end
$$;
