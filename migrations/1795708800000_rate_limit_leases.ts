import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * Rate limits taken in leases (src/v1/auth/rate-limit.ts): an instance takes several
 * tokens of a key's bucket at once and spends them itself, so a busy key costs one
 * statement per lease instead of one per request. `granted` is how many tokens the
 * last statement handed out, which the statement returns.
 */
export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    alter table headcount_rate_limits add column granted integer not null default 0;
    comment on column headcount_rate_limits.granted is 'headcount: tokens the last lease handed to an instance';
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`alter table headcount_rate_limits drop column granted;`);
}
