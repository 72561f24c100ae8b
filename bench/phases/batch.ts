/**
 * Batch ingest: COPY straight into events (what PostgreSQL alone can take), then POST
 * /v1/events in batches and single events, without a key and with an ingest key and its
 * rate limit, A B A B.
 */
import { createSql } from '../../src/db/client.js';
import type { EventRow } from '../../src/ingest/writer.js';
import { copyEvents } from '../copy.js';
import { median } from '../load.js';
import { fmt } from '../report.js';
import { startService, stopChild, withBenchKey } from '../service.js';
import { CLOCK_TICKS, cpuSnapshot, cpuSpent } from '../system.js';
import type { BenchContext } from './context.js';
import { measure, type Measured, stackOf, summary, type Target } from './measure.js';

export interface CopyRow {
  name: string;
  eventsPerSec: number;
  storeUsPerEvent: number;
  /** CPU of this process building the COPY text. */
  clientUsPerEvent: number;
}

/** POST /v1/events with or without a key: medians of the rounds, per event. */
export interface KeyCostRow {
  name: string;
  events: number;
  connections: number;
  eventsPerSec: number;
  ratioCopy: number;
  storeUsPerEvent: number;
  serviceUsPerEvent: number;
  p99Ms: number;
  errors: number;
  /** With a key only: against the same load without one. */
  ratioNoKey?: number;
  serviceCpuRatioNoKey?: number;
}

export interface BatchIngest {
  /** COPY, then POST /v1/events with batches of BENCH_BATCH_EVENTS and no key. */
  batch: (CopyRow | KeyCostRow)[];
  /** Each POST /v1/events load without, then with a key. */
  keyCost: KeyCostRow[];
}

async function measureCopy(ctx: BenchContext): Promise<CopyRow> {
  const { settings, pgPid } = ctx;
  ctx.progress.step(
    `batch ingest baseline: COPY of ${settings.batchEvents}-row batches straight into events, ${settings.batchConnections} connections, ${fmt(settings.copyRows)} rows`,
  );
  const copySql = createSql(ctx.dbUrl, { max: settings.batchConnections });
  const perConnection = Math.ceil(settings.copyRows / settings.batchEvents / settings.batchConnections);
  const before = cpuSnapshot({ bench: process.pid, store: pgPid });
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: settings.batchConnections }, async () => {
      for (let b = 0; b < perConnection; b++) {
        const now = Date.now();
        const rows: EventRow[] = Array.from({ length: settings.batchEvents }, () => ({
          site: 'default',
          timeMs: now,
          kind: Math.random() < 0.2 ? 'click' : 'impression',
          userId: crypto.randomUUID(),
          page: '',
          weight: 1,
        }));
        await copyEvents(copySql, rows);
      }
    }),
  );
  const s = (performance.now() - t0) / 1000;
  const spent = cpuSpent(before, cpuSnapshot({ bench: process.pid, store: pgPid }));
  const rows = perConnection * settings.batchConnections * settings.batchEvents;
  await copySql.end();
  const copy = {
    name: 'COPY into events',
    eventsPerSec: rows / s,
    storeUsPerEvent: ((spent.parts.store! / CLOCK_TICKS) * 1e6) / rows,
    clientUsPerEvent: ((spent.parts.bench! / CLOCK_TICKS) * 1e6) / rows,
  };
  ctx.progress.note(
    `${fmt(copy.eventsPerSec)} events/s; PostgreSQL ${fmt(copy.storeUsPerEvent, 2)} µs/event, the client building COPY text ${fmt(copy.clientUsPerEvent, 2)} µs/event`,
  );
  return copy;
}

export async function measureBatchIngest(ctx: BenchContext): Promise<BatchIngest> {
  const { settings, service, pgPid } = ctx;
  const { step, note } = ctx.progress;
  const copy = await measureCopy(ctx);
  const batch: BatchIngest['batch'] = [copy];
  // POST /v1/events without keys (V1_AUTH=none) and with an ingest key and its rate limit
  // (limits set above the offered load: this measures checking them, not refusing), run
  // A B A B: the cost of keys is the ratio between the two. Batches of 1,000 events, and
  // single events as beacons send them (the worst case for a per-request cost).
  step(
    `POST /v1/events without and with an ingest key: ${settings.batchEvents} events a request at -c${settings.batchConnections}, 1 at -c${settings.connections[0]}`,
  );
  const keyed = await startService(ctx.dbUrl, 1, [], {
    env: { V1_AUTH: 'keys', RATE_LIMIT_INGEST_PER_SECOND: '1000000', RATE_LIMIT_INGEST_BURST: '10000000' },
  });
  const keyedMode = await withBenchKey(ctx.dbUrl, ['events', '1', '$KEY']);
  const key = keyedMode[2]!;
  const auth: { name: string; target: Target; connections: number; events: number }[] = [];
  for (const [events, connections] of [
    [settings.batchEvents, settings.batchConnections],
    [1, settings.connections[0]!],
  ] as const) {
    for (const [label, svc, mode] of [
      ['no key (V1_AUTH=none)', service, ['events', String(events)]],
      ['ingest key + rate limit', keyed, ['events', String(events), key]],
    ] as const) {
      auth.push({
        name: `POST /v1/events ×${events}, ${label}`,
        connections,
        events,
        target: {
          name: `POST /v1/events ×${events}, ${label}`,
          kind: 'headcount',
          url: svc.url,
          mode: [...mode],
          account: stackOf(svc.pid, pgPid),
          serverSide: { method: 'POST', route: '/v1/events' },
        },
      });
    }
  }
  const authRaw: Record<string, Measured[]> = {};
  for (let run = 1; run <= settings.runs; run++) {
    // Each pair in the order without, with a key, then with, without: whatever the
    // database accumulates during a round falls on both alike.
    const order = run % 2 === 1 ? auth : auth.flatMap((_, i) => (i % 2 === 0 ? [auth[i + 1]!, auth[i]!] : []));
    for (const a of order) {
      step(`round ${run}/${settings.runs}: ${a.name}, wrk -c${a.connections} -d${settings.durationS}s`);
      const r = await measure(a.target, a.connections, settings.durationS, settings.wrkThreads);
      note(summary(r));
      (authRaw[a.name] ??= []).push(r);
    }
  }
  await stopChild(keyed.child);
  const authMed = (name: string, f: (r: Measured) => number): number => median(authRaw[name]!.map(f));
  const keyCost: KeyCostRow[] = [];
  for (const a of auth) {
    const eventsPerSec = authMed(a.name, (r) => r.requestsPerSec) * a.events;
    const row: KeyCostRow = {
      name: a.name,
      events: a.events,
      connections: a.connections,
      eventsPerSec,
      ratioCopy: eventsPerSec / copy.eventsPerSec,
      storeUsPerEvent: authMed(a.name, (r) => r.cpu.parts.store ?? NaN) / a.events,
      serviceUsPerEvent: authMed(a.name, (r) => r.cpu.parts.service ?? NaN) / a.events,
      p99Ms: authMed(a.name, (r) => r.p99Ms),
      errors: authRaw[a.name]!.reduce((n, r) => n + r.errors + r.non2xx, 0),
    };
    if (a.events === settings.batchEvents && a.name.includes('no key')) batch.push(row);
    keyCost.push(row);
  }
  for (let i = 0; i < keyCost.length; i += 2) {
    const [plain, withKey] = [keyCost[i]!, keyCost[i + 1]!];
    withKey.ratioNoKey = withKey.eventsPerSec / plain.eventsPerSec;
    withKey.serviceCpuRatioNoKey = withKey.serviceUsPerEvent / plain.serviceUsPerEvent;
    note(
      `${withKey.name}: ${fmt(withKey.ratioNoKey, 2)}× the events/s without a key, service CPU/event ${fmt(withKey.serviceCpuRatioNoKey, 2)}×`,
    );
  }
  return { batch, keyCost };
}
