/**
 * BENCH_PHASES=citus: the service on a local Citus cluster (a coordinator and two workers
 * on this machine, citus mode) beside the service on one PostgreSQL (postgres mode), in
 * the same run: POST /v1/events with 1,000-event batches of one site and spread over 50
 * sites (events/s, and CPU per event of the whole machine less wrk), rounds alternating
 * the two; then GET /v1/stats p50/p99 of a few shapes over what they ingested. Skipped,
 * saying so, without Citus (npm run setup:citus).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createSql } from '../../src/db/client.js';
import { findPostgres } from '../../src/db/local-cluster.js';
import { createLogger } from '../../src/log.js';
import { DAY_MS, floorDay, floorHour } from '../../src/time.js';
import { startBenchClusters } from '../clusters.js';
import { postmasterPid } from '../system.js';
import { latency, median } from '../load.js';
import { fmt, table } from '../report.js';
import { type Service, startService, stopChild } from '../service.js';
import { isoDay, type Progress, type Settings } from './context.js';
import { measure, type Measured, summary } from './measure.js';
import { latencyRow } from './read-path.js';

export interface CitusIngestRow {
  database: string;
  sites: number;
  eventsPerSec: number;
  /** Whole machine less wrk, µs per event (service, every PostgreSQL, the bench, other tenants). */
  machineUsPerEvent: number;
  /** The service's process; the PostgreSQL it connects to (the coordinator); the workers together: µs per event. */
  serviceUsPerEvent: number;
  coordinatorUsPerEvent: number;
  workersUsPerEvent: number;
  p99Ms: number;
  rounds: number[];
  errors: number;
}

export interface CitusStatsRow {
  database: string;
  shape: string;
  p50Ms: number;
  p99Ms: number;
  failures: number;
  /** Events of the shape's site still queued for the roller as the shape began (headcount_pending): reads add them. */
  queued: number;
}

const SITES = [1, 50];

export async function measureCitus(settings: Settings, progress: Progress): Promise<void> {
  const { step, note } = progress;
  if (!(await findPostgres(process.env.LOCAL_PG_BIN_DIR)).citus) {
    step('citus: SKIPPED, Citus is not installed (npm run setup:citus, as root, builds it)');
    return;
  }
  step(
    'citus: one PostgreSQL (postgres mode) and a local Citus cluster (a coordinator and two workers, citus mode), the service on each',
  );
  const clusters = await startBenchClusters(createLogger('warn'));
  const services: Service[] = [];
  try {
    // Each PostgreSQL's CPU (its postmaster's process tree) apart: what a projection to
    // more workers needs (docs/operations.md, "Running on Citus").
    const workers = Object.fromEntries(clusters.citus.workers.map((w, i) => [`worker${i + 1}`, postmasterPid(w.dataDir)]));
    const targets = [
      {
        database: 'postgres (1 node)',
        service: await startService(clusters.single.url, 1),
        nodes: { coordinator: postmasterPid(clusters.single.dataDir) },
      },
      {
        database: 'citus (2 workers, 8 shards)',
        service: await startService(clusters.citus.url, 1),
        nodes: { coordinator: postmasterPid(clusters.citus.dataDir), ...workers },
      },
    ];
    services.push(...targets.map((t) => t.service));
    const events = settings.batchEvents;
    const connections = settings.batchConnections;
    const ingest: CitusIngestRow[] = [];
    for (const sites of SITES) {
      // wrk.lua events-sites: each event of site-1 ... site-<sites>.
      const mode = ['events-sites', String(events), String(sites)];
      const raw: Measured[][] = targets.map(() => []);
      for (let run = 1; run <= settings.runs; run++) {
        // A B, then B A: what the machine does meanwhile falls on both alike.
        const order = run % 2 === 1 ? [0, 1] : [1, 0];
        for (const i of order) {
          const t = targets[i]!;
          step(
            `round ${run}/${settings.runs}: ${t.database}, POST /v1/events ×${events} over ${sites} site(s), wrk -c${connections} -d${settings.durationS}s`,
          );
          const r = await measure(
            {
              name: t.database,
              kind: 'headcount',
              url: t.service.url,
              mode,
              account: { service: t.service.pid, ...t.nodes },
              serverSide: { method: 'POST', route: '/v1/events' },
            },
            connections,
            settings.durationS,
            settings.wrkThreads,
          );
          note(summary(r));
          raw[i]!.push(r);
        }
      }
      for (const [i, t] of targets.entries()) {
        const rs = raw[i]!;
        const part = (name: string): number => median(rs.map((r) => r.cpu.parts[name] ?? NaN)) / events;
        const workerNames = Object.keys(t.nodes).filter((n) => n.startsWith('worker'));
        ingest.push({
          database: t.database,
          sites,
          eventsPerSec: median(rs.map((r) => r.requestsPerSec)) * events,
          machineUsPerEvent: median(rs.map((r) => r.cpu.machineLessWrkUs)) / events,
          serviceUsPerEvent: part('service'),
          coordinatorUsPerEvent: part('coordinator'),
          workersUsPerEvent: workerNames.reduce((sum, n) => sum + part(n), 0),
          p99Ms: median(rs.map((r) => r.p99Ms)),
          rounds: rs.map((r) => Math.round(r.requestsPerSec * events)),
          errors: rs.reduce((n, r) => n + r.errors + r.non2xx, 0),
        });
      }
    }

    // Over what the rounds ingested: today's events of "site-1" (in every batch of one
    // site, and 1/50 of the spread ones) and of "site-7" (spread ones only).
    const today = floorDay(Date.now());
    const week = `from=${isoDay(today - 6 * DAY_MS)}&to=${isoDay(today + DAY_MS)}`;
    const shapes: [string, () => string][] = [
      ['total 7 days, site-1', () => `/v1/stats?site=site-1&${week}`],
      ['day 7 days Asia/Kolkata, site-1', () => `/v1/stats?site=site-1&${week}&granularity=day&timezone=Asia/Kolkata`],
      [
        'hour 48 hours, site-7',
        () =>
          `/v1/stats?site=site-7&from=${new Date(floorHour(Date.now()) - 47 * 3_600_000).toISOString()}&to=${new Date(floorHour(Date.now()) + 3_600_000).toISOString()}&granularity=hour`,
      ],
      ['group_by kind 7 days, site-1', () => `/v1/stats?site=site-1&${week}&group_by=kind`],
    ];
    const stats: CitusStatsRow[] = [];
    const databases = [createSql(clusters.single.url, { max: 1 }), createSql(clusters.citus.url, { max: 1 })];
    try {
      for (const [shape, path] of shapes) {
        const site = /site=([^&]+)/.exec(path())![1]!;
        for (const [i, t] of targets.entries()) {
          const [queue] = await databases[i]!<
            [{ n: number }]
          >`select count(*)::int as n from headcount_pending where site = ${site}`;
          step(
            `citus: GET /v1/stats ${shape} on ${t.database}, 4 clients for ${settings.queryDurationS} s (${fmt(queue.n)} events of ${site} queued for the roller)`,
          );
          const r = await latency({ base: t.service.url, workers: 4, durationS: settings.queryDurationS, path });
          const row = latencyRow(progress, `${shape} (${t.database})`, r);
          stats.push({
            database: t.database,
            shape,
            p50Ms: row.p50Ms,
            p99Ms: row.p99Ms,
            failures: row.failures,
            queued: queue.n,
          });
        }
      }
    } finally {
      for (const db of databases) await db.end();
    }
    report(settings, ingest, stats);
  } finally {
    for (const s of services) await stopChild(s.child);
    await clusters.stop();
  }
}

function report(settings: Settings, ingest: CitusIngestRow[], stats: CitusStatsRow[]): void {
  console.log(
    `\nPOST /v1/events, ${settings.batchEvents} events a request, ${settings.batchConnections} connections, medians of ${settings.runs} rounds of ${settings.durationS} s:\n`,
  );
  console.log(
    table(
      [
        'database',
        'sites per batch',
        'events/s',
        'machine µs/event',
        'service',
        'PostgreSQL / coordinator',
        'workers',
        'p99 ms',
        'rounds (events/s)',
        'errors',
      ],
      ingest.map((r) => [
        r.database,
        String(r.sites),
        fmt(r.eventsPerSec),
        fmt(r.machineUsPerEvent, 1),
        fmt(r.serviceUsPerEvent, 1),
        fmt(r.coordinatorUsPerEvent, 1),
        r.workersUsPerEvent > 0 ? fmt(r.workersUsPerEvent, 1) : '-',
        fmt(r.p99Ms, 1),
        r.rounds.join(', '),
        String(r.errors),
      ]),
    ),
  );
  console.log(`\nGET /v1/stats, 4 clients, ${settings.queryDurationS} s each:\n`);
  console.log(
    table(
      ['shape', 'database', 'p50 ms', 'p99 ms', 'failures', 'queued for the roller'],
      stats.map((r) => [r.shape, r.database, fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), String(r.failures), fmt(r.queued)]),
    ),
  );
  mkdirSync('bench/results', { recursive: true });
  const file = `bench/results/${new Date().toISOString().replace(/[:.]/g, '-')}-citus.json`;
  writeFileSync(file, JSON.stringify({ settings, ingest, stats }, null, 2));
  console.log(`\nresults: ${file}`);
}
