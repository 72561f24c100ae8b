-- The dimensions of a stats request's group_by ('country,device'): none (null), one, or
-- two different ones, each checked by headcount_check_dimension. Raises SQLSTATE 22023
-- with COLUMN 'group_by' otherwise.
create or replace function headcount_parse_group_by(group_by text)
returns text[]
language plpgsql immutable
as $$
declare
  grp text[] := '{}';
begin
  if group_by is not null then
    grp := array(select headcount_check_dimension(btrim(x), 'group_by') from unnest(string_to_array(group_by, ',')) x);
    if cardinality(grp) > 2 or cardinality(grp) <> (select count(distinct x) from unnest(grp) x) then
      raise exception 'group_by takes one dimension or two different ones (country,device), not %', group_by
        using errcode = '22023', column = 'group_by';
    end if;
  end if;
  return grp;
end
$$;
