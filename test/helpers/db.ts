import { randomBytes } from 'node:crypto';
import { describe, inject } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { REFRESH_LOCK_KEY } from '../../src/db/refresher.js';
import type { StorageMode } from '../../src/db/storage.js';

export const ALL_MODES: StorageMode[] = ['postgres', 'timescaledb'];

/** Whether this run has a template for `mode` (timescaledb needs TimescaleDB installed). */
export const modeAvailable = (mode: StorageMode): boolean => inject('databaseServer').modes.includes(mode);

export interface TestDatabase {
  url: string;
  sql: Sql;
  /** Empties the events and both aggregates. */
  reset(): Promise<void>;
  drop(): Promise<void>;
}

export function databaseUrl(name: string): string {
  const url = new URL(inject('databaseServer').adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** A fresh, migrated database of its own (a copy of the mode's template). */
export async function createTestDatabase(mode: StorageMode): Promise<TestDatabase> {
  const name = `headcount_test_${mode}_${randomBytes(4).toString('hex')}`;
  const admin = createSql(inject('databaseServer').adminUrl, { max: 1 });
  try {
    await admin`create database ${admin(name)} template ${admin(`headcount_template_${mode}`)}`;
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const sql = createSql(url, { max: 5, applicationName: 'headcount-test' });
  return {
    url,
    sql,
    async reset() {
      // events_minutely is a continuous aggregate in timescaledb mode, a plain view
      // otherwise. The refresher's lock keeps a refresh from deadlocking the truncate.
      await sql.begin(async (tx) => {
        await tx`select pg_advisory_xact_lock(${REFRESH_LOCK_KEY})`;
        if (mode === 'timescaledb') await tx`truncate events_minutely, events_hourly, events_daily, users_daily, events`;
        else await tx`truncate events_hourly, events_daily, users_daily, events`;
      });
    },
    async drop() {
      await sql.end();
      const a = createSql(inject('databaseServer').adminUrl, { max: 1 });
      try {
        await a`drop database if exists ${a(name)} with (force)`;
      } finally {
        await a.end();
      }
    },
  };
}

/** The first row of a result that must have one. */
export function first<T>(rows: readonly T[]): T {
  const row = rows[0];
  if (row === undefined) throw new Error('expected a row, got none');
  return row;
}

/**
 * One suite per storage mode. A mode this run cannot test (timescaledb without
 * TimescaleDB installed) is skipped, and the run's summary names it.
 */
export function describeEachMode(title: string, suite: (mode: StorageMode) => void): void {
  for (const mode of ALL_MODES) {
    describe.skipIf(!modeAvailable(mode))(`${title}, ${mode} mode`, () => suite(mode));
  }
}
