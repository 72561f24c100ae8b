import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * The daily salts of the tracker's visitor ids (src/tracker/salts.ts): one random value
 * per UTC day, shared by every instance, so that the same visitor gets the same id from
 * any of them within a day and ids of two days cannot be joined once the older day's salt
 * is deleted (kept: the current day's and the previous one's).
 */
export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    create table headcount_salts (
      day date primary key,
      salt bytea not null check (octet_length(salt) = 32),
      created_at timestamptz not null default now()
    );
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`drop table headcount_salts;`);
}
