import { randomBytes } from 'node:crypto';
import { describe, inject } from 'vitest';
import type { PendingQuery, Row, TransactionSql } from 'postgres';
import { createSql, type Sql } from '../../src/db/client.js';
import { sqlState } from '../../src/db/errors.js';
import { APP_ROLE, prepareCitusDatabase, prepareDatabase } from '../../src/db/local-cluster.js';
import { migrate } from '../../src/db/migrate.js';
import { silentLogger } from '../../src/log.js';
import { LEVELS, REFRESH_LOCK_KEY, refreshAggregate } from '../../src/db/refresher.js';
import type { StorageMode } from '../../src/db/storage.js';

/** What the dimensions keep beside the raw events: emptied with them by reset(). */
const DIMENSION_TABLES =
  'headcount_pending, dimensions_hourly, dimensions_daily, dimensions_weekly, headcount_rollup_weeks, kinds_15m, headcount_rollup_days, ' +
  'headcount_rollups, headcount_sites, headcount_visits';

export const ALL_MODES: StorageMode[] = ['postgres', 'timescaledb'];

/** Whether this run has a template for `mode` (timescaledb needs TimescaleDB installed). */
export const modeAvailable = (mode: StorageMode): boolean => inject('databaseServer').modes.includes(mode);

export interface TestDatabase {
  url: string;
  sql: Sql;
  /** Empties the events and every aggregate. */
  reset(): Promise<void>;
  drop(): Promise<void>;
}

/** The URL of database `name` as the role the service would use (see TestDatabaseServer.appUrl). */
export function databaseUrl(name: string): string {
  const server = inject('databaseServer');
  const url = new URL(server.appUrl ?? server.adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * Runs `fn` with a superuser's connection to the server's maintenance database (CREATE/DROP
 * ROLE, DATABASE), or to `database`.
 */
export async function withAdmin<T>(fn: (admin: Sql) => Promise<T>, database?: string): Promise<T> {
  const url = new URL(inject('databaseServer').adminUrl);
  if (database) url.pathname = `/${database}`;
  return withConnection(url.toString(), fn);
}

/** `fn` on a connection of its own to `url`, closed after. */
async function withConnection<T>(url: string, fn: (sql: Sql) => Promise<T>): Promise<T> {
  const sql = createSql(url, { max: 1 });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

/**
 * Runs `fn` with a superuser's connection to `db` (on the Citus coordinator for a citus
 * mode database): for what the service's role may not do, such as deleting raw events.
 */
export async function withAdminOf<T>(db: TestDatabase, fn: (admin: Sql) => Promise<T>): Promise<T> {
  const { citus, adminUrl } = inject('databaseServer');
  const onCitus = citus !== undefined && new URL(citus.appUrl).port === new URL(db.url).port;
  const url = new URL(onCitus ? citus.coordinator.adminUrl : adminUrl);
  url.pathname = new URL(db.url).pathname;
  return withConnection(url.toString(), fn);
}

/**
 * Runs a test's own `insert into events …` as the writer stores events: in citus mode,
 * whose events have no trigger, its rows go to headcount_events_inserted in the same
 * statement (as the writer's do); in the other modes the trigger does that.
 */
export function insertIntoEvents(sql: Sql | TransactionSql, mode: StorageMode, insert: PendingQuery<Row[]>) {
  if (mode !== 'citus') return sql`${insert}`;
  // As text: Citus keeps a CTE's rows as an intermediate result, which cannot be void.
  return sql`
    with stored as (${insert} returning *)
    select headcount_events_inserted(array_agg(s::events))::text as done from stored s
  `;
}

/**
 * Runs `insert` on `db` with its triggers off (replica role, which takes a superuser: the
 * service's role is none): raw events only, no aggregates, for tests that need volume
 * fast and read the raw rows alone (the export).
 */
export async function insertRawOnly(db: TestDatabase, insert: (tx: TransactionSql) => Promise<unknown>): Promise<void> {
  await withAdminOf(db, (admin) =>
    admin.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await insert(tx);
    }),
  );
}

/** A fresh, migrated database of its own (a copy of the mode's template; citus: made and migrated). */
export const createTestDatabase = (mode: StorageMode): Promise<TestDatabase> =>
  mode === 'citus'
    ? createCitusDatabase()
    : openDatabase(`headcount_test_${mode}_${randomBytes(4).toString('hex')}`, mode, `headcount_template_${mode}`);

/** The advisory lock that makes the suite's Citus databases one at a time (any number, the suite's own). */
const CITUS_SETUP_LOCK = 1986622400;

/**
 * citus mode: a database made on every node of the suite's Citus cluster and migrated
 * (~5-10 s; a Citus database cannot be a template: see TestDatabaseServer.citus).
 */
async function createCitusDatabase(): Promise<TestDatabase> {
  const citus = inject('databaseServer').citus;
  if (!citus) throw new Error('this run has no Citus cluster (Citus is not installed): skip citus mode with modeAvailable');
  const name = `headcount_test_citus_${randomBytes(4).toString('hex')}`;
  const url = citusDatabaseUrl(name);
  // Both steps update the application role's row (its password; Citus passes the role on
  // to the workers as it distributes the tables), and two files' at once fail one of them
  // with "tuple concurrently updated" (XX000; docs/operations.md). The short first step is
  // made one at a time (a lock of the coordinator's postgres database, which every file's
  // helper takes); the migration, whole or not at all, is run again. (Holding the lock
  // through the migrations too made tests that start a database inside their 30 s wait
  // for other files' in a loaded run: one CI run timed out so.)
  const lock = createSql(citus.coordinator.adminUrl, { max: 1 });
  try {
    await lock`select pg_advisory_lock(${CITUS_SETUP_LOCK})`;
    await prepareCitusDatabase(citus, name);
  } finally {
    await lock.end();
  }
  for (let attempt = 1; ; attempt++) {
    try {
      await migrate({ databaseUrl: url, storageMode: 'citus', log: silentLogger });
      break;
    } catch (err) {
      if (attempt >= 5 || sqlState(err) !== 'XX000') throw err;
    }
  }
  const sql = createSql(url, { max: 5, applicationName: 'headcount-test' });
  return {
    url,
    sql,
    reset: () => truncatePostgresMode(sql),
    async drop() {
      await sql.end();
      await dropCitusDatabase(name);
    },
  };
}

/** The URL of database `name` of the suite's Citus cluster, as the service's role. */
export function citusDatabaseUrl(name: string): string {
  const url = new URL(inject('databaseServer').citus!.appUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops database `name` on every node of the suite's Citus cluster. */
export async function dropCitusDatabase(name: string): Promise<void> {
  const citus = inject('databaseServer').citus!;
  for (const node of [citus.coordinator, ...citus.workers]) {
    const a = createSql(node.adminUrl, { max: 1 });
    try {
      await a`drop database if exists ${a(name)} with (force)`;
    } finally {
      await a.end();
    }
  }
}

/** Empties postgres mode's (and citus mode's) events and every table kept beside them. */
const truncatePostgresMode = async (sql: Sql): Promise<void> => {
  await sql`truncate events, events_minutely_parts, events_hourly_parts, events_daily_parts, totals_hourly_parts, totals_daily_parts, ${sql.unsafe(DIMENSION_TABLES)}`;
};

/**
 * A fresh database with nothing in it: not migrated (reset() empties nothing). On the
 * managed test cluster it is set up as the service's own: owned by the application role,
 * with hll, and TimescaleDB when `mode` is timescaledb (which only a superuser creates).
 */
export const createEmptyDatabase = (mode?: StorageMode): Promise<TestDatabase> =>
  openDatabase(`headcount_test_empty_${randomBytes(4).toString('hex')}`, undefined, undefined, mode);

async function openDatabase(
  name: string,
  mode: StorageMode | undefined,
  template: string | undefined,
  extensionsFor?: StorageMode,
): Promise<TestDatabase> {
  const { adminUrl, appUrl } = inject('databaseServer');
  const admin = createSql(adminUrl, { max: 1 });
  try {
    if (template && appUrl) await admin`create database ${admin(name)} template ${admin(template)} owner ${admin(APP_ROLE)}`;
    else if (template) await admin`create database ${admin(name)} template ${admin(template)}`;
    else if (appUrl) await prepareDatabase(adminUrl, name, { timescaledb: extensionsFor === 'timescaledb' });
    else await admin`create database ${admin(name)}`;
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const sql = createSql(url, { max: 5, applicationName: 'headcount-test' });
  return {
    url,
    sql,
    async reset() {
      if (mode === 'postgres') {
        await truncatePostgresMode(sql);
      } else if (mode === 'timescaledb') {
        // As an operator would empty it: truncating the raw tables logs their whole range
        // as invalidated, and a refresh of every level over everything then empties the
        // continuous aggregates through TimescaleDB's own bookkeeping (truncating them
        // directly would leave watermarks and thresholds behind, which no production
        // database ever sees). The refresher's lock keeps the service's passes out.
        const conn = createSql(url, { max: 1, applicationName: 'headcount-test-reset' });
        try {
          await conn`select pg_advisory_lock(${REFRESH_LOCK_KEY})`;
          await conn`truncate events, events_minutely_parts, headcount_stale_hours, ${conn.unsafe(DIMENSION_TABLES)}`;
          // Lowest level first, each over everything, the way the refresher refreshes.
          const aggregates = LEVELS.flatMap((level) => level.aggregates);
          for (const aggregate of aggregates) await refreshAggregate(conn, aggregate, null, null);
          // Now and then (about 1 run of the suite in 8) a row of a previous test outlived
          // that refresh, and the next test counted one user too many (151 for 150): no
          // test may start on such a database. What is left is recomputed from the empty
          // sources (force), and if anything is left even then, the reset fails, loudly.
          const left = async () =>
            (
              await Promise.all(
                aggregates.map(async (a) => ({ a, n: (await conn`select count(*)::int as n from ${conn(a)}`)[0]!.n as number })),
              )
            ).filter((x) => x.n > 0);
          if ((await left()).length > 0) {
            for (const aggregate of aggregates) {
              await conn`call refresh_continuous_aggregate(${aggregate}::regclass, null, null, force => true, options => '{"buckets_per_batch": 0}')`;
            }
            const still = await left();
            if (still.length > 0) throw new Error(`reset left rows in ${JSON.stringify(still)}`);
          }
          await conn`select pg_advisory_unlock(${REFRESH_LOCK_KEY})`;
        } finally {
          await conn.end();
        }
      }
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

/** The server process behind `sql` (a client of one connection). */
export const backendPid = async (sql: Sql): Promise<number> =>
  first(await sql<{ pid: number }[]>`select pg_backend_pid() as pid`).pid;

/** Whether server process `pid` is waiting for a lock of `locktype` ('relation', 'advisory', …). */
export const waitsForLock = async (sql: Sql, pid: number, locktype: string): Promise<boolean> =>
  (await sql`select from pg_locks where pid = ${pid} and locktype = ${locktype} and not granted`).length > 0;

/** The first row of a result that must have one. */
export function first<T>(rows: readonly T[]): T {
  const row = rows[0];
  if (row === undefined) throw new Error('expected a row, got none');
  return row;
}

/**
 * One suite per storage mode (of ALL_MODES, or `modes`). A mode this run cannot test
 * (timescaledb without TimescaleDB installed, citus without Citus) is skipped, and the
 * run's summary names it.
 */
export function describeEachMode(title: string, suite: (mode: StorageMode) => void, modes: StorageMode[] = ALL_MODES): void {
  for (const mode of modes) {
    describe.skipIf(!modeAvailable(mode))(`${title}, ${mode} mode`, () => suite(mode));
  }
}

/**
 * describeEachMode over every mode, citus included: for the suites whose tests run there
 * as they are (not those that insert into events by SQL: citus mode's events have no
 * trigger, the writer's statement adds to the aggregates; see docs/storage.md, "Citus").
 */
export const describeEachModeWithCitus = (title: string, suite: (mode: StorageMode) => void): void =>
  describeEachMode(title, suite, [...ALL_MODES, 'citus']);
