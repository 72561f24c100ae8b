-- The value of dimension `name` of one event or queued event: a standard dimension's
-- column, or props.<name>'s value. The roller takes the values of declared properties
-- and combinations with it; a simple sql function, so that the planner inlines it.
create or replace function headcount_dimension_value(
  name text, referrer text, utm_source text, utm_medium text, utm_campaign text, utm_content text,
  utm_term text, country text, device text, browser text, os text, source text, props jsonb
)
returns text
language sql immutable parallel safe
as $$
  select case name
    when 'referrer' then referrer when 'utm_source' then utm_source when 'utm_medium' then utm_medium
    when 'utm_campaign' then utm_campaign when 'utm_content' then utm_content when 'utm_term' then utm_term
    when 'country' then country when 'device' then device when 'browser' then browser when 'os' then os
    when 'source' then source
    else case when starts_with(name, 'props.') then props ->> substr(name, 7) end
  end
$$;
