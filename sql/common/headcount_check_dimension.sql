-- A dimension name of a filter or group_by (argument `argument`): kind, page, a standard
-- dimension (headcount_dimensions), props.<name>, or entry_page and exit_page (of visits:
-- headcount_visit_stats; headcount_stats refuses them). Raises SQLSTATE 22023 naming the
-- argument otherwise.
create or replace function headcount_check_dimension(name text, argument text)
returns text
language plpgsql immutable
as $$
begin
  if name in ('kind', 'page', 'entry_page', 'exit_page') or name = any (headcount_dimensions()) or name ~ '^props\.[a-z][a-z0-9_.]{0,63}$' then
    return name;
  end if;
  raise exception '% is not a dimension: kind, page, %, props.<name>, or (of visits) entry_page or exit_page', name, array_to_string(headcount_dimensions(), ', ')
    using errcode = '22023', column = argument;
end
$$;
