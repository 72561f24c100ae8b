import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Events without a user (page views of seed 003 count views, not users: user_id is
 * null) are queued for the dimension rollups too: their weight counts as events, and
 * hll_add_agg skips their null hash, as events_minutely does.
 */
export function up(pgm: MigrationBuilder): void {
  pgm.sql(`alter table headcount_pending alter column user_hash drop not null;`);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    delete from headcount_pending where user_hash is null;
    alter table headcount_pending alter column user_hash set not null;
  `);
}
