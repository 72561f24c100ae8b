-- The filters of a stats request, parsed: a jsonb array of
--   {"dimension": "country", "op": "==", "values": ["DE", "FR"]}
-- from the `filter` strings of GET /v1/stats (and headcount_stats' filters argument):
--   <dimension><op><value>[|<value>…]
-- op: == is one of, != is none of, ^= starts with one of, *= contains one of (case
-- sensitive). A value may hold | and \ written as \| and \\ (a \ makes the next character
-- plain). In == and != an empty
-- value stands for "no value" (country== : events without a country). kinds and pages
-- (the older kind= and page= parameters) are "kind==…" and "page==…".
-- Bad filters raise SQLSTATE 22023 with COLUMN 'filter'.
create or replace function headcount_parse_filters(filters text[], kinds text[] default null, pages text[] default null)
returns jsonb
language plpgsql immutable
as $$
declare
  f text;
  m text[];
  vals text[];
  v text;
  c text;
  i integer;
  parsed jsonb := '[]';
begin
  if cardinality(filters) > 20 then
    raise exception 'at most 20 filters, not %', cardinality(filters) using errcode = '22023', column = 'filter';
  end if;
  foreach f in array coalesce(filters, '{}') loop
    m := regexp_match(f, '^([a-z][a-z0-9_.]*)(==|!=|\^=|\*=)(.*)$');
    if m is null then
      raise exception 'filter % is not <dimension><op><values>: op ==, !=, ^= or *=, values separated by | (country==DE|FR, page^=/blog/)', f
        using errcode = '22023', column = 'filter';
    end if;
    perform headcount_check_dimension(m[1], 'filter');
    -- Split on each | that no \ escapes; \x stands for x (\| and \\ for | and \).
    vals := '{}';
    v := '';
    i := 1;
    while i <= length(m[3]) loop
      c := substr(m[3], i, 1);
      if c = '\' and i < length(m[3]) then
        v := v || substr(m[3], i + 1, 1);
        i := i + 2;
        continue;
      elsif c = '|' then
        vals := vals || v;
        v := '';
      else
        v := v || c;
      end if;
      i := i + 1;
    end loop;
    vals := vals || v;
    if m[2] in ('^=', '*=') and '' = any (vals) then
      raise exception 'filter %: % needs a non-empty value', f, m[2] using errcode = '22023', column = 'filter';
    end if;
    if cardinality(vals) > 100 then
      raise exception 'filter %: at most 100 values', left(f, 100) using errcode = '22023', column = 'filter';
    end if;
    parsed := parsed || jsonb_build_object('dimension', m[1], 'op', m[2], 'values', to_jsonb(vals));
  end loop;
  if kinds is not null then
    parsed := parsed || jsonb_build_object('dimension', 'kind', 'op', '==', 'values', to_jsonb(kinds));
  end if;
  if pages is not null then
    parsed := parsed || jsonb_build_object('dimension', 'page', 'op', '==', 'values', to_jsonb(pages));
  end if;
  return parsed;
end
$$;
