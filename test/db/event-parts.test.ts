import { afterAll, beforeAll, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { refreshAggregates } from '../../src/db/refresher.js';
import { foldEvents } from '../../src/db/roller.js';
import type { StorageMode } from '../../src/db/storage.js';
import { insertEvents, type EventRow } from '../../src/ingest/writer.js';
import { createTestDatabase, describeEachModeWithCitus, first, type TestDatabase } from '../helpers/db.js';
import { prng } from '../helpers/events.js';

/*
 * Parts of the per-insert aggregates (migration 1797177600000_event_parts): each insert
 * appends its own row per key (part = its transaction's id) to events_minutely, and in
 * postgres and citus modes to the hour, day and total tables; headcount_fold_events folds
 * them into part 0. A key's events and users are the union of its rows, before and after
 * a fold, and while folds and inserts run at once.
 */

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** The tables of parts in `mode`. */
const partTables = (mode: StorageMode): string[] =>
  mode === 'timescaledb'
    ? ['events_minutely_parts']
    : ['events_minutely_parts', 'events_hourly_parts', 'events_daily_parts', 'totals_hourly_parts', 'totals_daily_parts'];

/** Per relation and key: events and exact distinct users, computed from the rows sent. */
function expected(rows: EventRow[]): Map<string, { events: number; users: number }> {
  const keys = new Map<string, { events: number; users: Set<string> }>();
  const add = (key: string, row: EventRow) => {
    const k = keys.get(key) ?? { events: 0, users: new Set<string>() };
    k.events += row.weight;
    if (row.userId !== null) k.users.add(row.userId);
    keys.set(key, k);
  };
  for (const row of rows) {
    const at = (unit: number) => new Date(Math.floor(row.timeMs / unit) * unit).toISOString();
    add(`events_minutely ${row.site} ${at(MINUTE_MS)} ${row.kind} ${row.page}`, row);
    add(`events_hourly ${row.site} ${at(HOUR_MS)} ${row.kind} ${row.page}`, row);
    add(`events_daily ${row.site} ${at(24 * HOUR_MS)} ${row.kind} ${row.page}`, row);
    add(`totals_hourly ${row.site} ${at(HOUR_MS)}`, row);
    add(`totals_daily ${row.site} ${at(24 * HOUR_MS)}`, row);
  }
  return new Map([...keys].map(([key, k]) => [key, { events: k.events, users: k.users.size }]));
}

/**
 * The same from the documented views (`views`: each must have one row per key), or from
 * the tables of parts, a key's rows unioned as headcount_stats does (in timescaledb mode
 * only the minutes have parts: hours and days are read from their views there).
 */
async function stored(
  sql: Sql,
  mode: StorageMode,
  from: 'views' | 'parts',
): Promise<Map<string, { events: number; users: number }>> {
  const out = new Map<string, { events: number; users: number }>();
  const relationOf = (name: string) =>
    from === 'parts' && (name === 'events_minutely' || mode !== 'timescaledb') ? `${name}_parts` : name;
  for (const name of ['events_minutely', 'events_hourly', 'events_daily', 'totals_hourly', 'totals_daily']) {
    const rest = name.startsWith('totals_') ? [] : ['kind', 'page'];
    const rows = await sql<{ site: string; bucket: Date; rest: string[]; events: number; users: number }[]>`
      select site, bucket, array[${sql.unsafe(rest.length ? rest.join(', ') : `''`)}] as rest,
        sum(events)::int as events, round(hll_cardinality(hll_union_agg(users)))::int as users
      from ${sql(relationOf(name))}
      group by ${sql(['site', 'bucket', ...rest])}
      ${from === 'views' ? sql`having count(*) = 1` : sql``}
    `;
    for (const r of rows) {
      out.set([name, r.site, r.bucket.toISOString(), ...(rest.length ? r.rest : [])].join(' '), {
        events: r.events,
        users: r.users,
      });
    }
  }
  return out;
}

/** Rows of `table` per part kind: folded (part 0) and appended (the others). */
async function partsOf(sql: Sql, table: string): Promise<{ folded: number; appended: number; keys: number }> {
  const key = table.startsWith('totals_') ? ['site', 'bucket'] : ['site', 'bucket', 'kind', 'page'];
  const { folded, appended } = first(
    await sql<{ folded: number; appended: number }[]>`
      select count(*) filter (where part = 0)::int as folded, count(*) filter (where part <> 0)::int as appended
      from ${sql(table)}
    `,
  );
  const keys = (await sql`select from ${sql(table)} group by ${sql(key)}`).length;
  return { folded, appended, keys };
}

describeEachModeWithCitus('parts of the per-insert aggregates', (mode) => {
  let db: TestDatabase;
  const write = (sql: Sql, rows: EventRow[]) => insertEvents(sql, rows, { callInserted: mode === 'citus' });
  const start = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - 3 * HOUR_MS;

  /** `count` events over `users` users, three pages and two kinds of `site`, spread over `minutes` minutes from `fromMs`. */
  const draw = (r: () => number, site: string, count: number, users: number, fromMs: number, minutes: number): EventRow[] =>
    Array.from({ length: count }, () => ({
      site,
      timeMs: fromMs + Math.floor(r() * minutes * MINUTE_MS),
      kind: r() < 0.8 ? 'pageview' : 'click',
      userId: `u${Math.floor(r() * users)}`,
      page: `/p/${Math.floor(r() * 3)}`,
      weight: 1 + Math.floor(r() * 2),
    }));

  /** What the views answer, checked against what the parts answer. */
  const both = async (sql: Sql) => {
    const views = await stored(sql, mode, 'views');
    expect(await stored(sql, mode, 'parts')).toEqual(views);
    return views;
  };

  beforeAll(async () => {
    db = await createTestDatabase(mode);
  });
  afterAll(async () => {
    await db?.drop();
  });

  it('appends a part per insert and key, answers the union before and after a fold, and keeps one row per key after it', async () => {
    await db.reset();
    const r = prng(7);
    const sent: EventRow[] = [];
    // 30 inserts into the same few minutes: every key gets parts from several of them.
    for (let i = 0; i < 30; i++) {
      const rows = draw(r, i % 3 === 0 ? 'shop' : 'default', 40, 300, start, 3);
      await write(db.sql, rows);
      sent.push(...rows);
    }
    const want = expected(sent);
    expect(await both(db.sql)).toEqual(want);
    for (const table of partTables(mode)) {
      const p = await partsOf(db.sql, table);
      expect(p.folded, table).toBe(0);
      expect(p.appended, table).toBeGreaterThan(p.keys);
    }

    expect(await foldEvents(db.sql)).toBeGreaterThan(0);
    expect(await both(db.sql)).toEqual(want);
    for (const table of partTables(mode)) {
      const p = await partsOf(db.sql, table);
      expect(p, table).toEqual({ folded: p.keys, appended: 0, keys: p.keys });
    }
    // Nothing left: a fold writes nothing.
    expect(await foldEvents(db.sql)).toBe(0);

    /** Writes `rows`, then checks every key before and after a fold. */
    const writeAndFold = async (rows: EventRow[]) => {
      await write(db.sql, rows);
      sent.push(...rows);
      expect(await both(db.sql)).toEqual(expected(sent));
      await foldEvents(db.sql);
      expect(await both(db.sql)).toEqual(expected(sent));
    };
    // More inserts on folded keys: part 0 and new parts, unioned.
    await writeAndFold(draw(r, 'default', 200, 400, start, 3));

    if (mode === 'timescaledb') {
      // Materialized, then written below the watermark (stale hours): a fold leaves those
      // parts alone and logs no invalidation (one of a day past the retention window kept
      // its stale mark, and a later refresh rebuilt the day from dropped hours), and the
      // refresh materializes them as they are.
      const refresher = createSql(db.url, { max: 1 });
      try {
        await refreshAggregates(refresher);
        expect(await both(db.sql)).toEqual(expected(sent));
        const late = draw(r, 'shop', 300, 200, start, 60);
        await write(db.sql, late);
        sent.push(...late);
        const logged = async () =>
          first(
            await db.sql<{ n: number }[]>`
              select count(*)::int as n from _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log
            `,
          ).n;
        const before = await logged();
        expect(await foldEvents(db.sql)).toBe(0);
        expect(await logged()).toBe(before);
        const below = await db.sql<{ n: number }[]>`
          select count(*)::int as n from events_minutely_parts
          where part <> 0 and bucket < (select through from headcount_refresh_state)
        `;
        expect(first(below).n).toBeGreaterThan(0);
        expect(await both(db.sql)).toEqual(expected(sent));
        await refreshAggregates(refresher);
        expect(first(await db.sql<{ n: number }[]>`select count(*)::int as n from headcount_stale_hours`).n).toBe(0);
        expect(await both(db.sql)).toEqual(expected(sent));
      } finally {
        await refresher.end();
      }
    }
  }, 60_000);

  it('loses and doubles nothing while inserts and folds run at once: each writer reads its own writes', async () => {
    await db.reset();
    const writers = 4;
    // The last minute, and in timescaledb mode from the watermark on (the first test
    // materialized): a fold folds only the minutes above it there.
    const through =
      mode === 'timescaledb'
        ? first(await db.sql<{ at: Date }[]>`select through as at from headcount_refresh_state`).at.getTime()
        : 0;
    const from = Math.max(Date.now() - MINUTE_MS, Number.isFinite(through) ? through : 0);
    const minutes = (Date.now() - from) / MINUTE_MS;
    const clients = Array.from({ length: writers + 1 }, () => createSql(db.url, { max: 1 }));
    const sent: EventRow[] = [];
    let writing = true;
    let folds = 0;
    try {
      const folder = (async () => {
        while (writing) {
          folds += (await foldEvents(clients[writers]!)) > 0 ? 1 : 0;
        }
      })();
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          const r = prng(100 + w);
          const site = `w${w}`;
          let events = 0;
          for (let i = 0; i < 25; i++) {
            const rows = draw(r, site, 1 + Math.floor(r() * 30), 100, from, minutes);
            await write(clients[w]!, rows);
            sent.push(...rows);
            events += rows.reduce((n, row) => n + row.weight, 0);
            // The writer's own site, read at once from each table of parts: every event
            // it wrote is there once, folded or not.
            for (const table of ['events_minutely_parts', mode === 'timescaledb' ? 'totals_hourly' : 'totals_hourly_parts']) {
              const [row] = await clients[w]!<{ n: number }[]>`
                select coalesce(sum(events), 0)::int as n from ${clients[w]!(table)} where site = ${site}
              `;
              expect(row!.n, `${table}, ${site}, insert ${i}`).toBe(events);
            }
          }
        }),
      );
      writing = false;
      await folder;
      expect(folds).toBeGreaterThan(0);
      expect(await both(db.sql)).toEqual(expected(sent));
      await foldEvents(db.sql);
      expect(await both(db.sql)).toEqual(expected(sent));
    } finally {
      writing = false;
      await Promise.all(clients.map((c) => c.end()));
    }
  }, 60_000);
});
