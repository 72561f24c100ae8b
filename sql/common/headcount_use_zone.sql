-- Sets TimeZone for the rest of the calling function (callers have a SET timezone
-- clause, which confines it to them).
create or replace function headcount_use_zone(timezone text) returns void
language plpgsql
as $$
begin
  perform set_config('timezone', headcount_zone(timezone), true);
exception when invalid_parameter_value then
  if sqlerrm like 'timezone %' then raise; end if;
  raise exception 'timezone % is not a time zone this database knows (an IANA name such as Asia/Kolkata, or an offset such as +05:30)', timezone
    using errcode = '22023', column = 'timezone';
end
$$;
