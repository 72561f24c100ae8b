/**
 * Dimensions, ingest: whole-stack CPU per event (the service's process tree and all of
 * PostgreSQL, /proc) of
 *   A  GET /collect with the queue off (headcount_queue_dimensions doing nothing: the
 *      write path as it was before dimensions),
 *   B  GET /collect as it is (every insert queued for the roller),
 *   C  POST /v1/events, 1,000-event batches without dimensions,
 *   D  the same batches with every standard dimension and 3 properties (wrk.lua events-dims),
 *   E  POST /v1/events, one pageview with a user per request (a server-side client),
 *   F  the tracker's request: one pageview without user, text/plain, a browser's user
 *      agent and a forwarded public address (the visitor id derived, the referrer, source,
 *      country, device, browser and OS filled in, and whatever the write path keeps for it),
 * in rounds A B C D E F, F E D C B A, …; medians. Each round's CPU runs from wrk's start until the
 * queue its events made is drained (the roller's work belongs to the events), so
 * asynchronous work is charged to the round that caused it. PostgreSQL's share is split
 * in two: the roll-up (the backends of the service's roller and of the bench's drain, by
 * application_name) and the rest (the inserts, their triggers, the queue, autovacuum).
 */
import { median } from '../load.js';
import { fmt } from '../report.js';
import { drained, drainSession, rollUpSpent, rollUpTicks } from '../roll-up-cpu.js';
import { CLOCK_TICKS, cpuSnapshot, cpuSpent } from '../system.js';
import { withoutPart } from '../sql-parts.js';
import { wrk } from '../wrk.js';
import type { BenchContext } from './context.js';

interface IngestTarget {
  name: string;
  mode: string[];
  connections: number;
  eventsPerRequest: number;
  queueOff?: boolean;
}

export interface IngestRound {
  name: string;
  events: number;
  eventsPerSec: number;
  p99Ms: number;
  /** Whole stack (service + PostgreSQL) CPU per event, µs, from wrk's start to the queue drained. */
  stackUs: number;
  serviceUs: number;
  storeUs: number;
  /** Of storeUs: the backends that rolled the queue up (the service's roller, the bench's drain). */
  rollUpUs: number;
  errors: number;
}

/** The medians of a target's rounds. */
export type IngestRow = Omit<IngestRound, 'events'> & { rounds: number };

export interface DimensionIngest {
  rows: IngestRow[];
  raw: IngestRound[];
  /** B against A: (B - A) / A, %. Target: within 5 %. */
  collectDeltaPct: number;
  /** D - C, µs of whole-stack CPU per event. Target: at most 15 µs. */
  dimensionsDeltaUs: number;
  /** Of dimensionsDeltaUs: the roll-up's part (D - C of rollUpUs); the rest is the write path's. */
  dimensionsRollUpDeltaUs: number;
  /** F - E: what a tracked pageview costs more than a plain single event, µs of whole-stack CPU. */
  trackedDeltaUs: number;
}

export async function measureDimensionIngest(ctx: BenchContext): Promise<DimensionIngest> {
  const { settings, service, pgPid, sql } = ctx;
  const { step, note } = ctx.progress;
  const batch = settings.batchEvents;
  const targets: IngestTarget[] = [
    {
      name: 'GET /collect, queue off (before dimensions)',
      mode: ['collect'],
      connections: settings.connections[0]!,
      eventsPerRequest: 1,
      queueOff: true,
    },
    { name: 'GET /collect', mode: ['collect'], connections: settings.connections[0]!, eventsPerRequest: 1 },
    {
      name: `POST /v1/events ×${batch}, no dimensions`,
      mode: ['events', String(batch)],
      connections: settings.batchConnections,
      eventsPerRequest: batch,
    },
    {
      name: `POST /v1/events ×${batch}, every dimension + 3 properties`,
      mode: ['events-dims', String(batch)],
      connections: settings.batchConnections,
      eventsPerRequest: batch,
    },
    {
      name: 'POST /v1/events, one event with a user',
      mode: ['event'],
      connections: settings.connections[0]!,
      eventsPerRequest: 1,
    },
    {
      name: 'POST /v1/events, a tracked pageview (no user)',
      mode: ['tracked'],
      connections: settings.connections[0]!,
      eventsPerRequest: 1,
    },
  ];
  const drain = drainSession(ctx.dbUrl);
  const raw: IngestRound[] = [];
  try {
    for (let run = 1; run <= settings.runs; run++) {
      const order = run % 2 === 1 ? targets : [...targets].reverse();
      for (const t of order) {
        step(`dimensions ingest, round ${run}/${settings.runs}: ${t.name}, wrk -c${t.connections} -d${settings.durationS}s`);
        const restore = t.queueOff ? await withoutPart(sql, ctx.storageMode, 'headcount_queue_dimensions') : undefined;
        try {
          await drained(drain);
          const rollBefore = await rollUpTicks(sql);
          const before = cpuSnapshot({ service: service.pid, store: pgPid });
          const r = await wrk({ url: service.url, connections: t.connections, durationS: settings.durationS, mode: t.mode });
          await drained(drain);
          const spent = cpuSpent(before, cpuSnapshot({ service: service.pid, store: pgPid }));
          const rollUp = rollUpSpent(rollBefore, await rollUpTicks(sql));
          const events = r.requests * t.eventsPerRequest;
          const us = (ticks: number | undefined): number => (((ticks ?? NaN) / CLOCK_TICKS) * 1e6) / events;
          const round: IngestRound = {
            name: t.name,
            events,
            eventsPerSec: r.requestsPerSec * t.eventsPerRequest,
            p99Ms: r.p99Ms,
            stackUs: us((spent.parts.service ?? NaN) + (spent.parts.store ?? NaN)),
            serviceUs: us(spent.parts.service),
            storeUs: us(spent.parts.store),
            rollUpUs: us(rollUp),
            errors: r.errors + r.non2xx,
          };
          note(
            `${fmt(round.eventsPerSec)} events/s, p99 ${fmt(round.p99Ms, 1)} ms; stack ${fmt(round.stackUs, 1)} µs/event (service ${fmt(round.serviceUs, 1)}, PostgreSQL ${fmt(round.storeUs, 1)}, of which the roll-up ${fmt(round.rollUpUs, 1)}), errors ${round.errors}`,
          );
          raw.push(round);
        } finally {
          await restore?.();
        }
      }
    }
  } finally {
    await drain.end();
  }
  const rows: IngestRow[] = targets.map((t) => {
    const rounds = raw.filter((r) => r.name === t.name);
    const med = (f: (r: IngestRound) => number): number => median(rounds.map(f));
    return {
      name: t.name,
      rounds: rounds.length,
      eventsPerSec: med((r) => r.eventsPerSec),
      p99Ms: med((r) => r.p99Ms),
      stackUs: med((r) => r.stackUs),
      serviceUs: med((r) => r.serviceUs),
      storeUs: med((r) => r.storeUs),
      rollUpUs: median(rounds.map((r) => r.rollUpUs).filter((v) => !Number.isNaN(v))),
      errors: rounds.reduce((n, r) => n + r.errors, 0),
    };
  });
  const [a, b, c, d, e, f] = rows as [IngestRow, IngestRow, IngestRow, IngestRow, IngestRow, IngestRow];
  const collectDeltaPct = ((b.stackUs - a.stackUs) / a.stackUs) * 100;
  const dimensionsDeltaUs = d.stackUs - c.stackUs;
  const dimensionsRollUpDeltaUs = d.rollUpUs - c.rollUpUs;
  const trackedDeltaUs = f.stackUs - e.stackUs;
  note(
    `GET /collect ${fmt(b.stackUs, 1)} µs/event against ${fmt(a.stackUs, 1)} without the queue: ${collectDeltaPct.toFixed(1)} % (target ≤ 5 %); POST /v1/events with dimensions ${fmt(dimensionsDeltaUs, 1)} µs/event more (target ≤ 15 µs; the roll-up ${fmt(dimensionsRollUpDeltaUs, 1)} of it, the write path ${fmt(dimensionsDeltaUs - dimensionsRollUpDeltaUs, 1)}); a tracked pageview ${fmt(f.stackUs, 1)} µs against ${fmt(e.stackUs, 1)} for one event with a user (+${fmt(trackedDeltaUs, 1)} µs)`,
  );
  return { rows, raw, collectDeltaPct, dimensionsDeltaUs, dimensionsRollUpDeltaUs, trackedDeltaUs };
}
