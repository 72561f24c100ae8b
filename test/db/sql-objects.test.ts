import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate } from '../../src/db/migrate.js';
import { applySqlObjects, SQL_DIR, SQL_OBJECTS } from '../../src/db/sql-objects.js';
import type { StorageMode } from '../../src/db/storage.js';
import { silentLogger } from '../../src/log.js';
import { catalogOf } from '../helpers/catalog.js';
import { createEmptyDatabase, createTestDatabase, describeEachMode, first, type TestDatabase } from '../helpers/db.js';
import { migrationsOf, type Release } from '../helpers/releases.js';

describe('sql/', () => {
  it('has one file per object of SQL_OBJECTS, in common/ or in each mode, and no other', async () => {
    const files: Record<string, string[]> = {};
    for (const dir of ['common', 'timescaledb', 'postgres']) {
      files[dir] = (await readdir(path.join(SQL_DIR, dir))).map((f) => f.replace(/\.sql$/, ''));
    }
    for (const name of SQL_OBJECTS) {
      const where = Object.keys(files).filter((dir) => files[dir]!.includes(name));
      // Common to both modes, or in one or both modes: never both common and a mode's.
      expect(where.length === 1 || (where.length === 2 && !where.includes('common')), `${name}: ${where.join(', ')}`).toBe(
        where.length > 0,
      );
    }
    expect(
      Object.values(files)
        .flat()
        .filter((name) => !(SQL_OBJECTS as readonly string[]).includes(name)),
    ).toEqual([]);
  });
});

/** The functions, views (not continuous aggregates) and triggers of public, none an extension's. */
const objectNames = async (db: TestDatabase): Promise<string[]> =>
  (
    await db.sql<{ name: string }[]>`
      select p.proname::text as name from pg_proc p
      where p.pronamespace = 'public'::regnamespace
        and not exists (select from pg_depend d where d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e')
      union
      select c.relname::text from pg_class c
      where c.relnamespace = 'public'::regnamespace and c.relkind = 'v' and c.relname not like '%\\_cagg'
      union
      select t.tgname::text from pg_trigger t join pg_class c on c.oid = t.tgrelid
      where c.relnamespace = 'public'::regnamespace and not t.tgisinternal
      order by 1
    `
  ).map((r) => r.name);

/** A copy of sql/ with `edit` applied to some files (by name), for a database that applied another version. */
async function sqlVariant(edit: Record<string, (text: string | undefined) => string | undefined>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'headcount-sql-'));
  await cp(SQL_DIR, dir, { recursive: true });
  for (const [name, change] of Object.entries(edit)) {
    for (const sub of ['common', 'timescaledb', 'postgres']) {
      const file = path.join(dir, sub, `${name}.sql`);
      const text = await readFile(file, 'utf8').catch(() => undefined);
      if (text === undefined) continue;
      const changed = change(text);
      if (changed === undefined) await rm(file);
      else await writeFile(file, changed);
    }
  }
  return dir;
}

const STATS_SIGNATURE = 'text, timestamptz, timestamptz, text, text, text[], text[], text, integer, text[], text, bigint';

/** Another version of sql/: headcount_stats with another signature, and no users_daily. */
const olderSql = () =>
  sqlVariant({
    headcount_stats: (text) =>
      text!
        .replace('max_raw_rows bigint default 2000000\n)', 'max_raw_rows bigint default 2000000,\n  unused text default null\n)')
        .replace(`headcount_stats(${STATS_SIGNATURE}) is`, `headcount_stats(${STATS_SIGNATURE}, text) is`),
    users_daily: () => undefined,
  });

describeEachMode('SQL objects', (mode: StorageMode) => {
  let fresh: TestDatabase;
  beforeAll(async () => {
    fresh = await createTestDatabase(mode);
  });
  afterAll(async () => fresh?.drop());

  it('gives every function, view and trigger of the schema one file of sql/', async () => {
    const applied = (await fresh.sql<{ name: string }[]>`select name from headcount_sql_objects order by name`).map(
      (r) => r.name,
    );
    expect(await objectNames(fresh)).toEqual(applied);
    expect(applied.length).toBeGreaterThan(10);
  });

  it('keeps the sketches as v0.1.0 made them (log2m 14, regwidth 5, expthresh -1, sparse, seed 0)', async () => {
    const db = await createTestDatabase(mode);
    try {
      await db.sql`
        insert into events (time, kind, user_id)
        select date_trunc('minute', now()) - interval '1 minute', 'collect', 'user-' || i from generate_series(1, 3000) i
      `;
      const [row] = await db.sql`
        select m.users = (select hll_add_agg(hll_hash_text(user_id, 0), 14, 5, -1, 1) from events) as same,
               hll_log2m(m.users) as log2m, hll_regwidth(m.users) as regwidth
        from events_minutely m
      `;
      expect(row).toEqual({ same: true, log2m: 14, regwidth: 5 });
    } finally {
      await db.drop();
    }
  });

  it('ends with the schema of a fresh database, whether upgraded from v0.1.0 or v0.2.0 with data, or from another sql/', async () => {
    const expected = await catalogOf(fresh.sql);
    const upgraded = async (release: Release, sqlDir?: string) => {
      const db = await createEmptyDatabase();
      try {
        const steps = migrationsOf(release);
        expect(await migrate({ databaseUrl: db.url, storageMode: mode, count: steps.length, log: silentLogger, sqlDir })).toEqual(
          steps,
        );
        await db.sql`
          insert into events (time, kind, user_id)
          select now() - i * interval '97 minutes', (array['collect', 'click'])[1 + i % 2], 'user-' || i % 40
          from generate_series(0, 299) i
        `;
        await migrate({ databaseUrl: db.url, storageMode: mode, log: silentLogger });
        return await catalogOf(db.sql);
      } finally {
        await db.drop();
      }
    };
    expect(await upgraded('v0.1.0')).toEqual(expected);
    expect(await upgraded('v0.2.0')).toEqual(expected);

    // A database whose objects came from another version of sql/ (another signature of
    // headcount_stats, no users_daily): the layer drops what it made and makes today's.
    const older = await olderSql();
    try {
      const db = await createEmptyDatabase();
      try {
        await migrate({ databaseUrl: db.url, storageMode: mode, log: silentLogger, sqlDir: older });
        expect(
          first(await db.sql`select count(*)::int as n from pg_proc where proname = 'headcount_stats' and pronargs = 13`).n,
        ).toBe(1);
        expect(await migrate({ databaseUrl: db.url, storageMode: mode, log: silentLogger })).toEqual([]);
        expect(await catalogOf(db.sql)).toEqual(expected);
      } finally {
        await db.drop();
      }
    } finally {
      await rm(older, { recursive: true, force: true });
    }
  });

  it('applies nothing while no file changed, and every object again when one did', async () => {
    const db = await createTestDatabase(mode);
    const comment = await sqlVariant({
      headcount_zone: (text) => `${text!}\n-- A comment changes the file, not the function.\n`,
    });
    try {
      expect(await applySqlObjects(db.sql)).toEqual([]);
      const files = await applySqlObjects(db.sql, comment);
      expect(files).toContain('sql/common/headcount_zone.sql');
      expect(files).toContain('sql/common/headcount_stats.sql');
      expect(await applySqlObjects(db.sql, comment)).toEqual([]);
      expect((await applySqlObjects(db.sql)).length).toBe(files.length);
    } finally {
      await db.drop();
      await rm(comment, { recursive: true, force: true });
    }
  });

  it('runs every down step whatever the layer made of the objects the older migrations created', async () => {
    const older = await olderSql();
    const db = await createEmptyDatabase();
    try {
      const all = await migrate({ databaseUrl: db.url, storageMode: mode, log: silentLogger, sqlDir: older });
      // 1795795200000_stats_without_jit's down step alters headcount_stats by its old signature.
      expect(
        await migrate({ databaseUrl: db.url, storageMode: mode, direction: 'down', count: all.length, log: silentLogger }),
      ).toEqual([...all].reverse());
      expect(await objectNames(db)).toEqual([]);
      expect(await migrate({ databaseUrl: db.url, storageMode: mode, log: silentLogger })).toEqual(all);
      expect(await catalogOf(db.sql)).toEqual(await catalogOf(fresh.sql));
    } finally {
      await db.drop();
      await rm(older, { recursive: true, force: true });
    }
  });
});
