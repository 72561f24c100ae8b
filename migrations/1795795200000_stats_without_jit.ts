import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * headcount_stats without JIT compilation. Its lookup plans many small index scans over
 * every chunk a range covers, and over 60 days of data the planner's cost passed
 * jit_above_cost: PostgreSQL then compiled ~450 functions per call, about 180 ms of a
 * 30-day query that otherwise takes 20-30 ms (npm run bench, "60-day volume"). The
 * setting holds for every caller, the service and an analyst in psql alike.
 */
const SIGNATURE = 'headcount_stats(text, timestamptz, timestamptz, text, text, text[], text[], text, integer)';

export function up(pgm: MigrationBuilder): void {
  pgm.sql(`alter function ${SIGNATURE} set jit = off;`);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`alter function ${SIGNATURE} reset jit;`);
}
