/**
 * npm run bench:roller — what the roller (headcount_roll_up) costs PostgreSQL per event:
 * batches of BENCH_ROLLER_BATCH (default 20,000) queued events with every standard dimension (a few hundred values
 * each) and 3 properties, on a site with 3 declared rollups (a property, a pair, a
 * triple), each rolled up in one call, into a database of its own (STORAGE_MODE picks the
 * mode). Measured: the CPU time of the server process running the calls (/proc, so the
 * cluster must run on this machine), over all BENCH_ROLLER_ROUNDS rolls, and the median
 * roll's wall time.
 *
 * A roll appends parts that headcount_fold_parts folds into part 0 every few minutes
 * (or 32 rolls): what a roll costs is a cycle of BENCH_ROLLER_FOLD_EVERY rolls and the
 * fold after them, per event. Several values (BENCH_ROLLER_FOLD_EVERY=1,30) are variants
 * timed against each other, cycle after cycle, A B A B: folding after every roll
 * rewrites the rows of part 0 at every roll, as every roll did before parts. Before the
 * measured cycles, BENCH_ROLLER_PREFILL events (default 20,000) are rolled and folded, so
 * that the busy values' day and hour sketches are as large as a running site's (200,000:
 * dense, 10 KB).
 *
 * BENCH_ROLLER_BASELINE=<file>: the roller's definitions to compare with, ROLLER_FILES of a
 * commit (for example `for f in headcount_roll_up_events headcount_roll_up_batch
 * headcount_roll_up; do git show <commit>:sql/common/$f.sql; done > /tmp/base.sql`), with the
 * first BENCH_ROLLER_FOLD_EVERY value. The two definitions are then applied in turn
 * before each cycle, baseline first, A B A B, and the report gives both and their ratio.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSql, type Sql } from '../src/db/client.js';
import { freePort } from '../src/db/local-cluster.js';
import { SQL_DIR } from '../src/db/sql-objects.js';
import { createLogger } from '../src/log.js';
import { benchDatabase } from './database.js';
import { median } from './load.js';
import { backendPid, CLOCK_TICKS, processTicks } from './system.js';

const env = process.env;
const rounds = Number(env.BENCH_ROLLER_ROUNDS ?? 5);
const BATCH = Number(env.BENCH_ROLLER_BATCH ?? 20_000);
const PREFILL = Number(env.BENCH_ROLLER_PREFILL ?? 20_000);
const FOLD_EVERY = (env.BENCH_ROLLER_FOLD_EVERY ?? '1').split(',').map(Number);

/** Queues `count` events of site shop from number `start` on, in the last two hours. */
const queueBatch = (sql: Sql, start: number, count = BATCH) => sql`
  insert into events (site, time, kind, user_id, page, weight, referrer, utm_source, utm_medium, utm_campaign,
                      utm_content, utm_term, country, device, browser, os, source, props)
  select 'shop', now() - interval '10 minutes' - (g % 6000) * interval '1 second',
         (array['pageview', 'click', 'signup'])[1 + (g % 7 = 0)::int + (g % 29 = 0)::int],
         'u' || (hashint4(g) & 65535), '/p/' || (hashint4(g * 7) & 255), 1,
         'ref' || abs(hashint4(g * 3)) % 200 || '.example', 'src' || abs(hashint4(g * 5)) % 20,
         'med' || abs(hashint4(g * 11)) % 5, 'camp' || abs(hashint4(g * 13)) % 30, 'c' || abs(hashint4(g * 17)) % 10,
         't' || abs(hashint4(g * 19)) % 40,
         (array['DE', 'US', 'FR', 'GB', 'IN', 'BR', 'JP', 'CN', 'ES', 'IT'])[1 + abs(hashint4(g * 23)) % 10] || abs(hashint4(g * 29)) % 6,
         (array['desktop', 'mobile', 'tablet'])[1 + abs(hashint4(g * 31)) % 3], 'b' || abs(hashint4(g * 37)) % 8,
         'os' || abs(hashint4(g * 41)) % 6, 'S' || abs(hashint4(g * 43)) % 30,
         jsonb_build_object('plan', 'p' || abs(hashint4(g * 47)) % 4, 'ab', 'v' || abs(hashint4(g * 53)) % 2,
                            'lang', 'l' || abs(hashint4(g * 59)) % 12)
  from generate_series(${start}::int, ${start + count - 1}::int) g
`;

/** CPU milliseconds process `pid` has used. */
const cpuMs = (pid: number): number => (processTicks(pid) * 1000) / CLOCK_TICKS;

/** CPU µs per event over every roll of a variant (a roll of a few events is shorter than a clock tick). */
const perEvent = (cpuMsPerRoll: number[]): number =>
  (cpuMsPerRoll.reduce((a, b) => a + b, 0) * 1000) / (cpuMsPerRoll.length * BATCH);

/** What a roll runs, in the order they are created (src/db/sql-objects.ts). */
const ROLLER_FILES = ['headcount_roll_up_events', 'headcount_roll_up_batch', 'headcount_roll_up'];

async function main(): Promise<void> {
  const log = createLogger('warn');
  const db = await benchDatabase('headcount_bench_roller', log, {
    dataDir: path.resolve('.data/bench-roller'),
    port: await freePort(),
  });
  const sql = createSql(db.url, { max: 1 });
  const current = (await Promise.all(ROLLER_FILES.map((f) => readFile(path.join(SQL_DIR, 'common', `${f}.sql`), 'utf8')))).join(
    '\n',
  );
  const baseline = env.BENCH_ROLLER_BASELINE ? await readFile(env.BENCH_ROLLER_BASELINE, 'utf8') : undefined;
  /** Name, definition applied before each cycle (none: the current one stays), rolls per fold. */
  const variants: [string, string | undefined, number][] = baseline
    ? [
        ['baseline', baseline, FOLD_EVERY[0]!],
        ['current', current, FOLD_EVERY[0]!],
      ]
    : FOLD_EVERY.map((k) => [`fold every ${k}`, undefined, k]);
  const results = new Map<string, { cpu: number[]; wall: number[] }>(variants.map(([name]) => [name, { cpu: [], wall: [] }]));
  try {
    await sql`insert into headcount_rollups (site, dims) values ('shop', 'props.plan'), ('shop', 'country,device'), ('shop', 'browser,os,props.lang')`;
    const pid = await backendPid(sql);
    let start = 0;
    // Not measured: the rollup rows then exist, as on a running site, as large as PREFILL makes them.
    for (; start < PREFILL; start += 20_000) {
      await queueBatch(sql, start, Math.min(20_000, PREFILL - start));
      await sql`select headcount_roll_up(20000)`;
    }
    await sql`select headcount_fold_parts(interval '0')`;
    for (let round = 0; round < rounds; round++) {
      for (const [name, definition, foldEvery] of variants) {
        if (definition) await sql.unsafe(definition);
        const r = results.get(name)!;
        let cpu = 0;
        let wall = 0;
        // The queueing (the insert and its trigger) is not the roller's: only the rolls and
        // the fold after them are timed.
        const timed = async (query: () => Promise<unknown>) => {
          const cpuBefore = cpuMs(pid);
          const wallBefore = performance.now();
          const out = await query();
          cpu += cpuMs(pid) - cpuBefore;
          wall += performance.now() - wallBefore;
          return out;
        };
        for (let i = 0; i < foldEvery; i++) {
          await queueBatch(sql, start);
          start += BATCH;
          const [{ moved }] = (await timed(() => sql`select headcount_roll_up(${BATCH}) as moved`)) as [{ moved: number }];
          if (moved !== BATCH) throw new Error(`the roll moved ${moved} events, not ${BATCH}`);
        }
        await timed(() => sql`select headcount_fold_parts(interval '0')`);
        r.cpu.push(cpu / foldEvery);
        r.wall.push((wall * 1000) / (foldEvery * BATCH));
      }
    }
    console.log(
      `mode ${env.STORAGE_MODE ?? 'auto'}: ${rounds} cycles of rolls of ${BATCH} events and a fold per variant, after ${PREFILL} events (every standard dimension, 3 properties, 3 declared rollups)`,
    );
    for (const [name, r] of results) {
      console.log(
        `  ${name.padEnd(14)} PostgreSQL CPU ${perEvent(r.cpu).toFixed(1)} µs/event (all cycles), wall ${median(r.wall).toFixed(1)} µs/event (median cycle)`,
      );
    }
    const [a, ...others] = variants.map(([name]) => name);
    for (const b of others) {
      console.log(`  ${b} / ${a} CPU: ${(perEvent(results.get(b)!.cpu) / perEvent(results.get(a!)!.cpu)).toFixed(3)}`);
    }
  } finally {
    await sql.end();
    await db.close();
  }
}

await main();
