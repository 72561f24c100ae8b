/**
 * npm run bench:stats-ab — two definitions of the read path timed against each other on
 * the data a bench run kept (BENCH_KEEP=1 npm run bench leaves its database,
 * headcount_bench, on the bench cluster): every shape of issue 19's targets
 * (bench/phases/dims-shapes.ts) called as headcount_stats in SQL, the variants loaded in
 * turn, A B, B A, A B …, medians per shape. The answers of both must be equal, row for
 * row: a variant that answers differently is reported, not timed as a gain.
 *
 *   BENCH_STATS_A=<file>  SQL defining the baseline (e.g. `git show <commit>:sql/common/headcount_stats.sql`,
 *                         or several files concatenated); B is the current file of every
 *                         function the A file defines (sql/), so that A and B replace the same objects
 *   BENCH_STATS_ROUNDS    rounds (default 5); each runs every shape once per variant
 *   BENCH_STATS_DB        the database (default headcount_bench)
 *   BENCH_STATS_SHAPES    a regular expression: only the shapes whose name matches it
 *
 * A shape the cost guard refuses at the data's volume (SQLSTATE 54000) counts as that
 * answer, timed like the others.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createSql, type Sql } from '../src/db/client.js';
import { startLocalCluster } from '../src/db/local-cluster.js';
import { readSqlObjects } from '../src/db/sql-objects.js';
import { readStorageMode } from '../src/db/storage.js';
import { createLogger } from '../src/log.js';
import { DAY_MS, floorDay, floorHour } from '../src/time.js';
import { median } from './load.js';
import { isoDay } from './phases/context.js';
import { dimensionShapes, type Shape } from './phases/dims-shapes.js';
import { table } from './report.js';

const env = process.env;
const rounds = Number(env.BENCH_STATS_ROUNDS ?? 5);

/** The headcount_stats call of a shape, ranges as the bench's requests have them (shapePath). */
function call(sql: Sql, shape: Shape, today: number) {
  const r = shape.range;
  const day = (ms: number) => sql`headcount_day_start(${isoDay(ms)}::date, ${shape.timezone})`;
  const [from, to] =
    'hours' in r
      ? [
          sql`${new Date(floorHour(Date.now()) - (r.hours - 1) * 3_600_000)}::timestamptz`,
          sql`${new Date(floorHour(Date.now()) + 3_600_000)}::timestamptz`,
        ]
      : 'days' in r
        ? [day(today - r.days * DAY_MS), day(today)]
        : [day(today - (r.todayDays - 1) * DAY_MS), day(today + DAY_MS)];
  const filters = (shape.filters ?? []).map((f) => `${f.dim}==${f.values.join('|')}`);
  return sql<{ out: string }[]>`
    select coalesce(json_agg(s order by s.bucket, s.group_values::text), '[]')::text as out
    from headcount_stats(${shape.site}, ${from}, ${to}, ${shape.granularity}, ${shape.timezone},
                         group_by => ${shape.groupBy?.join(',') ?? null},
                         filters => ${filters.length > 0 ? filters : null}::text[]) s
  `;
}

async function main(): Promise<void> {
  if (!env.BENCH_STATS_A) throw new Error('BENCH_STATS_A=<file>: the baseline definitions');
  const log = createLogger('warn');
  const dataDir = path.resolve('.data/bench-postgres');
  const cluster = await startLocalCluster({ dataDir, port: Number(env.BENCH_PG_PORT ?? 54339), log });
  const sql = createSql(cluster.urlOf(env.BENCH_STATS_DB ?? 'headcount_bench'), { max: 1 });
  try {
    const a = await readFile(env.BENCH_STATS_A, 'utf8');
    const names = [...a.matchAll(/create or replace function (\w+)\s*\(/gi)].map((m) => m[1]!);
    const current = (await readSqlObjects(await readStorageMode(sql))).filter((o) => names.includes(o.name));
    if (current.length === 0) throw new Error(`${env.BENCH_STATS_A} defines none of sql/'s functions`);
    const b = current.map((o) => o.text).join('\n');
    console.log(`A: ${env.BENCH_STATS_A}; B: ${current.map((o) => o.file).join(', ')}`);
    const today = floorDay(Date.now());
    const only = env.BENCH_STATS_SHAPES ? new RegExp(env.BENCH_STATS_SHAPES) : undefined;
    const shapes = dimensionShapes().filter((s) => !only || only.test(s.name));
    const ms = new Map<string, number[]>();
    const answers = new Map<string, string>();
    const differ = new Set<string>();
    for (let round = 0; round < rounds; round++) {
      for (const [name, text] of round % 2 === 0
        ? [
            ['A', a],
            ['B', b],
          ]
        : [
            ['B', b],
            ['A', a],
          ]) {
        await sql.unsafe(text!);
        for (const shape of shapes) {
          const start = performance.now();
          // A shape the cost guard refuses (SQLSTATE 54000, a 400 in the bench) is an
          // answer too: both variants must refuse it.
          const out = await call(sql, shape, today).then(
            ([row]) => row?.out ?? '',
            (err: unknown) => {
              if ((err as { code?: string }).code !== '54000') throw err;
              return 'refused (54000)';
            },
          );
          const key = `${shape.name}\u0000${name}`;
          ms.set(key, [...(ms.get(key) ?? []), performance.now() - start]);
          const digest = createHash('md5').update(out).digest('hex');
          const seen = answers.get(shape.name);
          if (seen === undefined) answers.set(shape.name, digest);
          else if (seen !== digest) differ.add(shape.name);
        }
      }
      console.log(`round ${round + 1}/${rounds} done`);
    }
    await sql.unsafe(b);
    const med = (shape: string, v: string) => median(ms.get(`${shape}\u0000${v}`)!);
    console.log(
      `\n${rounds} rounds, A B / B A alternating, ms per call (median); B is what sql/ has now\n\n` +
        table(
          ['shape', 'A ms', 'B ms', 'B / A', 'answers'],
          shapes.map((s) => [
            s.name,
            med(s.name, 'A').toFixed(1),
            med(s.name, 'B').toFixed(1),
            (med(s.name, 'B') / med(s.name, 'A')).toFixed(3),
            differ.has(s.name) ? 'DIFFER' : 'equal',
          ]),
        ),
    );
    if (differ.size > 0) process.exitCode = 1;
  } finally {
    await sql.end();
    await cluster.stop();
  }
}

await main();
