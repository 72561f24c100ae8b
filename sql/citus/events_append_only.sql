-- citus mode: events are append-only as in postgres mode (sql/postgres/events_append_only.sql),
-- by privileges rather than a trigger: Citus refuses triggers on distributed tables
-- ("triggers are not supported on distributed tables"), and citus.enable_unsafe_triggers
-- is not supported. So update and delete on events are revoked from its owner (the
-- service's role, which never updates or deletes single events) and from public; Citus
-- checks them on the coordinator and propagates the revoke to the shards. An update or
-- delete is then refused with "permission denied for table events" (SQLSTATE 42501).
-- Old days still leave by whole partitions (headcount_maintain_partitions: dropping a
-- table is the owner's right, not a privilege), and the default partition's old rows by a
-- delete on that partition itself. A superuser is not held back, as no trigger holds one
-- (who must change single events grants them back: `grant update, delete on events to ...`,
-- and the aggregates then do not follow).
do $$
begin
  execute format('revoke update, delete on events from %s, public', (select c.relowner::regrole from pg_class c where c.oid = 'events'::regclass));
end
$$;
