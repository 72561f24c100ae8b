/**
 * Dimensions, results: the figures of the dimension phases as
 * bench/results/<time>-dimensions.json, and as tables on the console.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fmt, table } from '../report.js';
import type { BenchContext } from './context.js';
import type { DimensionIngest } from './dims-ingest.js';
import { type DimensionQueries, EXACT_UP_TO } from './dims-queries.js';
import type { DimensionStorage } from './dims-storage.js';
import type { Volume } from './volume.js';

export interface DimensionFindings {
  machine: string;
  volume: Volume;
  storage: DimensionStorage;
  queries: DimensionQueries;
  ingest: DimensionIngest | undefined;
}

export function reportDimensions(ctx: BenchContext, f: DimensionFindings): string {
  const { settings, storageMode } = ctx;
  const results = {
    when: new Date().toISOString(),
    machine: f.machine,
    loadAverageAtEnd: os.loadavg(),
    storageMode,
    settings,
    volume: f.volume,
    storage: f.storage,
    latency: f.queries.latency,
    accuracy: f.queries.accuracy,
    ingest: f.ingest,
  };
  const dir = path.resolve('bench/results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${results.when.replace(/[:.]/g, '-')}-dimensions.json`);
  writeFileSync(file, JSON.stringify(results, null, 2));

  const v = f.volume;
  console.log(
    `\nheadcount dimensions benchmark, ${results.when} — ${f.machine}; storage mode ${storageMode}; ${v.days} days × ${fmt(settings.volumeEventsPerDay)} events/day = ${fmt(v.events)} events (${Object.entries(
      v.perSite,
    )
      .map(([s, n]) => `${s} ${fmt(n)}`)
      .join(', ')})\n`,
  );
  console.log(
    `seeding ${v.seedS.toFixed(0)} s, its backend ${fmt(v.seedBackendUsPerEvent, 2)} µs of CPU per event; roller (meanwhile, until drained): ${fmt(v.roll.moved)} events in ${v.roll.batches} batches of ${fmt(v.roll.batchRows)}, its backend ${fmt(v.roll.backendUsPerEvent, 2)} µs of CPU per event (alone after the seeding: ${fmt(v.roll.alone.backendUsPerEvent, 2)}, the whole cluster ${fmt(v.roll.alone.storeUsPerEvent, 2)}, over ${fmt(v.roll.alone.moved)} events); drained ${v.seedAndRollS.toFixed(0)} s after the seeding started; the whole cluster ${fmt(v.storeUsPerEvent, 2)} µs of CPU per event over both (/proc)\n`,
  );
  console.log(
    table(
      ['shape', 'service', 'requests', 'p50 ms', 'p99 ms', 'target p50/p99 ms', 'met', 'statuses / refusal'],
      f.queries.latency.map((l) => [
        l.shape,
        l.service,
        String(l.requests),
        fmt(l.p50Ms, 1),
        fmt(l.p99Ms, 1),
        l.targetP99Ms === undefined ? '-' : `${l.targetP50Ms ?? '-'} / ${l.targetP99Ms}`,
        l.meetsTarget === undefined ? '-' : l.meetsTarget ? 'yes' : 'NO',
        l.refused ?? JSON.stringify(l.statuses),
      ]),
    ),
  );
  console.log('');
  console.log(
    table(
      [
        'shape',
        'rows',
        'exact users (min-max)',
        'max error %',
        'mean error %',
        `rows < ${EXACT_UP_TO} users`,
        'of them not exact',
        'events wrong',
      ],
      f.queries.accuracy.map((a) => [
        a.shape,
        String(a.rows),
        `${fmt(a.exactUsersRange[0])}-${fmt(a.exactUsersRange[1])}`,
        a.maxErrorPct.toFixed(2),
        a.meanErrorPct.toFixed(2),
        String(a.smallRows),
        String(a.smallNotExact),
        String(a.eventsWrong + a.unmatched),
      ]),
    ),
  );
  console.log('');
  console.log(
    table(
      ['storage', 'MiB', '% of raw events'],
      f.storage.parts.map((p) => [p.part + (p.counted ? '' : ' *'), fmt(p.bytes / 2 ** 20, 1), p.pctOfEvents.toFixed(2)]),
    ),
  );
  console.log(
    `raw events ${fmt(f.storage.eventsBytes / 2 ** 20, 1)} MiB; everything the dimensions add (rows without *): ${fmt(f.storage.addedBytes / 2 ** 20, 1)} MiB = ${f.storage.addedPct.toFixed(2)} %`,
  );
  if (f.ingest) {
    console.log('');
    console.log(
      table(
        ['ingest', 'rounds', 'events/s', 'p99 ms', 'stack µs/event', 'service µs', 'PostgreSQL µs', 'of it roll-up µs', 'errors'],
        f.ingest.rows.map((r) => [
          r.name,
          String(r.rounds),
          fmt(r.eventsPerSec),
          fmt(r.p99Ms, 1),
          fmt(r.stackUs, 1),
          fmt(r.serviceUs, 1),
          fmt(r.storeUs, 1),
          fmt(r.rollUpUs, 1),
          String(r.errors),
        ]),
      ),
    );
    console.log(
      `GET /collect against the write path without the queue: ${f.ingest.collectDeltaPct.toFixed(1)} % (target ≤ 5 %); /v1/events with every dimension: +${fmt(f.ingest.dimensionsDeltaUs, 1)} µs/event (target ≤ 15 µs; the roll-up +${fmt(f.ingest.dimensionsRollUpDeltaUs, 1)}, the write path +${fmt(f.ingest.dimensionsDeltaUs - f.ingest.dimensionsRollUpDeltaUs, 1)}); a tracked pageview: +${fmt(f.ingest.trackedDeltaUs, 1)} µs against one event with a user`,
    );
  }
  console.log(`results: ${path.relative(process.cwd(), file)}`);
  return file;
}
