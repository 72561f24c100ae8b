-- The standard dimensions of an event, in the order they were added (as their columns on
-- events and headcount_pending, where props comes before source). Each is rolled up alone for every site (dimensions_hourly,
-- dimensions_daily: dims = its name); properties (props.<name>) and combinations only
-- where a site declares them (headcount_rollups).
create or replace function headcount_dimensions()
returns text[]
language sql immutable parallel safe
as $$
  select array['referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'utm_content', 'utm_term',
               'country', 'device', 'browser', 'os', 'source']
$$;
