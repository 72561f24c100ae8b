/**
 * npm run bench:insert — one batched INSERT … unnest(arrays) against one COPY … FROM
 * STDIN, the two single-statement forms the group-commit writer could use, at the
 * batch sizes it sees (tens of rows at moderate load, thousands under backlog).
 */
import path from 'node:path';
import { createSql } from '../src/db/client.js';
import { type EventRow, insertEvents } from '../src/ingest/writer.js';
import { createLogger } from '../src/log.js';
import { copyEvents } from './copy.js';
import { benchDatabase } from './database.js';
import { median } from './load.js';
import { table } from './report.js';

async function main(): Promise<void> {
  const log = createLogger('warn');
  const db = await benchDatabase('headcount_bench_insert', log, {
    dataDir: path.resolve('.data/bench-postgres'),
    port: Number(process.env.BENCH_PG_PORT ?? 54339),
  });
  const url = db.url;
  const sql = createSql(url, { max: 1 });
  const [{ storage_mode: mode }] = (await sql`select storage_mode from headcount_settings`) as unknown as [
    { storage_mode: string },
  ];
  const total = Number(process.env.BENCH_INSERT_ROWS ?? 200_000);
  const rows: string[][] = [];
  for (const batch of [32, 1024]) {
    const results: Record<string, number[]> = { unnest: [], copy: [] };
    for (let run = 0; run < 3; run++) {
      for (const [name, insert] of [
        ['unnest', insertEvents],
        ['copy', copyEvents],
      ] as const) {
        const now = Date.now();
        const started = performance.now();
        for (let i = 0; i < total; i += batch) {
          const chunk: EventRow[] = Array.from({ length: batch }, (_, j) => ({
            site: 'default',
            timeMs: now - ((i + j) % 3_600_000),
            kind: 'collect',
            userId: `u${(i + j) % 50_000}`,
            page: '',
            weight: 1,
          }));
          await insert(sql, chunk);
        }
        results[name]!.push(total / ((performance.now() - started) / 1000));
      }
    }
    for (const name of ['unnest', 'copy']) {
      rows.push([
        String(batch),
        name,
        Math.round(median(results[name]!)).toLocaleString('en-US'),
        results[name]!.map((r) => Math.round(r)).join(', '),
      ]);
    }
    console.log(`batch ${batch} done`);
  }
  console.log(
    `\nsingle-statement inserts, ${mode} mode, ${total.toLocaleString('en-US')} rows per run, one connection, synchronous_commit on\n`,
  );
  console.log(table(['rows/statement', 'statement', 'rows/s (median of 3)', 'runs'], rows));
  await sql.end();
  await db.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
