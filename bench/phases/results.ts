/**
 * Results: the run's figures as bench/results/<time>.json and .png, and as tables on the
 * console.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chart, costTable, fmt, type LatencyRow, latencyTable, table } from '../report.js';
import type { AccuracyRow } from './accuracy.js';
import type { BatchIngest } from './batch.js';
import type { BenchContext } from './context.js';
import type { Cost } from './cost.js';
import type { ReadAfterWrite } from './read-after-write.js';

/** What the measuring phases found, in the order the report shows it. */
export interface Findings {
  machine: string;
  cost: Cost;
  batchIngest: BatchIngest;
  /** The read path's, the read-after-write pairs' and the volume's latencies, in that order. */
  latency: LatencyRow[];
  /** Absent in BENCH_PHASES=cost runs, as the read path's phases. */
  readAfterWrite?: ReadAfterWrite;
  currentHourEvents: number;
  accuracy: AccuracyRow[];
  volumeEvents: number;
}

/** Stops the RSS sampler, writes the JSON and the chart, prints the tables; returns the JSON's path. */
export async function reportResults(ctx: BenchContext, f: Findings): Promise<string> {
  const { settings, storageMode: mode } = ctx;
  const { quick } = settings;
  const costRows = f.cost.rows;
  const { batch, keyCost } = f.batchIngest;
  const { readAfterWrite, accuracy, machine } = f;
  ctx.rss.stop();
  const peakRssMb = ctx.rss.peakKb / 1024;
  const [storedEvents]: [{ n: number }?] = await ctx.sql`select count(*)::int8 as n from events`;
  const results = {
    when: new Date().toISOString(),
    machine,
    loadAverageAtEnd: os.loadavg(),
    storageMode: mode,
    quick,
    settings,
    cost: costRows,
    batch,
    keyCost,
    latency: f.latency,
    readAfterBackDatedWrite: readAfterWrite,
    currentHourEvents: f.currentHourEvents,
    accuracy,
    volume: { events: f.volumeEvents, storedEvents: storedEvents?.n },
    peakRssMb,
    raw: f.cost.raw,
  };
  const dir = path.resolve('bench/results');
  mkdirSync(dir, { recursive: true });
  const stamp = results.when.replace(/[:.]/g, '-');
  const file = path.join(dir, `${stamp}.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));
  chart(
    path.join(dir, `${stamp}.png`),
    `headcount ${results.when.slice(0, 16)} (${mode} mode, ${os.cpus().length} cores${quick ? ', quick' : ''})`,
    costRows,
    f.latency,
  );

  console.log(
    `\nheadcount benchmark, ${results.when} — ${machine}; storage mode ${mode}${quick ? '; QUICK' : ''}; wrk -t${settings.wrkThreads}, medians of ${settings.runs} rounds of ${settings.durationS} s, run A B C A B C\n`,
  );
  console.log(costTable(costRows));
  const first = costRows.filter((r) => r.connections === settings.connections[0]);
  const bare = first.find((r) => r.scenario.startsWith('bare'));
  const koaRow = first.find((r) => r.scenario.startsWith('Koa'));
  if (bare && koaRow) {
    console.log(
      `\nwrk saturates the references: bare node:http ${fmt(bare.requestsPerSec)} req/s = ${fmt(bare.requestsPerSec / koaRow.requestsPerSec, 2)}× Koa alone; wrk used ${fmt(bare.wrkCores, 2)} of a core against bare node:http's ${fmt(bare.serviceCores, 2)}.`,
    );
  }
  console.log(
    'CPU/req: whole machine busy (/proc/stat) less wrk, per request; stack = service process tree + store (PostgreSQL or Redis) from /proc/<pid>/stat; other = machine - wrk - service - store (this bench, other tenants).',
  );
  console.log('');
  console.log(
    table(
      ['batch ingest', 'events/s', 'x COPY', 'PostgreSQL µs/event', 'service (or COPY client) µs/event'],
      batch.map((b) => [
        b.name,
        fmt(b.eventsPerSec),
        'ratioCopy' in b ? fmt(b.ratioCopy, 2) : '1.00',
        fmt(b.storeUsPerEvent, 2),
        fmt('serviceUsPerEvent' in b ? b.serviceUsPerEvent : b.clientUsPerEvent, 2),
      ]),
    ),
  );
  console.log('');
  console.log(
    table(
      ['/v1 keys', 'connections', 'events/s', 'x without key', 'service µs/event', 'PostgreSQL µs/event', 'p99 ms'],
      keyCost.map((k) => [
        k.name,
        String(k.connections),
        fmt(k.eventsPerSec),
        k.ratioNoKey === undefined ? '1.00' : fmt(k.ratioNoKey, 2),
        fmt(k.serviceUsPerEvent, 2),
        fmt(k.storeUsPerEvent, 2),
        fmt(k.p99Ms, 1),
      ]),
    ),
  );
  console.log('');
  console.log(latencyTable(f.latency));
  if (readAfterWrite) console.log(`reads that missed their back-dated write: ${readAfterWrite.missed} of ${readAfterWrite.pairs}`);
  console.log('');
  console.log(
    table(
      ['distinct users', '/daily_uniques', 'error'],
      accuracy.map((a) => [fmt(a.users), fmt(a.estimate), `${a.errorPct.toFixed(2)} %`]),
    ),
  );
  console.log(`\npeak RSS of the service (WORKERS=1): ${peakRssMb.toFixed(0)} MB`);
  console.log(`results: bench/results/${stamp}.json and .png`);
  return file;
}
