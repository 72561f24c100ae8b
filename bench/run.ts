/**
 * npm run bench: what headcount costs per durable event, against what a user would run
 * instead, measured in the same run: a bare node:http server, Koa + @koa/router with no
 * work, and seed 000's architecture (nginx + ngx_lua + Redis PFADD). Load comes from wrk
 * (bench/wrk.lua); CPU per request from /proc. Then the read path. See docs/benchmarks.md.
 * BENCH_QUICK=1: everything small, about 3 minutes.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createSql, type Sql } from '../src/db/client.js';
import { freePort, type LocalCluster, startLocalCluster } from '../src/db/local-cluster.js';
import { migrate } from '../src/db/migrate.js';
import { createLogger } from '../src/log.js';
import { DAY_MS, floorDay, floorHour } from '../src/time.js';
import { hourSummary } from '../src/analytics/queries.js';
import { distinctUsersOverDays } from '../src/collect/queries.js';
import type { EventRow } from '../src/ingest/writer.js';
import { copyEvents } from './copy.js';
import { callLatency, latency, type LatencyResult, median, throughput } from './load.js';
import { chart, costTable, latencyTable, type LatencyRow, type ThroughputRow, table } from './report.js';
import { refreshAll, seedAnalytics, seedDay, seedDistinctUsers } from './seed.js';
import { type Seed000, startSeed000 } from './seed000.js';
import { type Buckets, quantileBetween, scrapeBuckets } from './server-metrics.js';
import { type Accounted, childPids, CLOCK_TICKS, cpuSnapshot, cpuSpent, postmasterPid } from './system.js';
import { startService, stopChild, withBenchKey } from './service.js';
import { ensureWrk, wrk, type WrkResult } from './wrk.js';

const env = process.env;
const quick = env.BENCH_QUICK === '1';
const num = (name: string, full: number, short: number): number => Number(env[name] ?? (quick ? short : full));
const settings = {
  quick,
  durationS: num('BENCH_DURATION_S', 10, 4),
  runs: num('BENCH_RUNS', 3, 2),
  connections: (env.BENCH_CONNECTIONS ?? '64').split(',').map(Number),
  wrkThreads: num('BENCH_WRK_THREADS', 1, 1),
  currentHourEvents: num('BENCH_CURRENT_HOUR_EVENTS', 1_000_000, 100_000),
  ingestRate: num('BENCH_INGEST_RATE', 5000, 5000),
  queryDurationS: num('BENCH_QUERY_DURATION_S', 5, 2),
  volumeDays: num('BENCH_VOLUME_DAYS', 60, 3),
  volumeEventsPerDay: num('BENCH_VOLUME_EVENTS_PER_DAY', 1_000_000, 100_000),
  accuracyUsers: quick ? [1_000, 100_000] : [1_000, 100_000, 1_000_000],
  batchEvents: num('BENCH_BATCH_EVENTS', 1000, 1000),
  copyRows: num('BENCH_COPY_ROWS', 500_000, 100_000),
  batchConnections: num('BENCH_BATCH_CONNECTIONS', 4, 4),
  readAfterWriteS: num('BENCH_READ_AFTER_WRITE_S', 10, 4),
  keep: env.BENCH_KEEP === '1',
};

const started = Date.now();
let stepNo = 0;
const step = (what: string): void => {
  stepNo++;
  console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${stepNo}. ${what}`);
};
const note = (what: string): void => console.log(`         ${what}`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmt = (v: number, digits = 0): string =>
  Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';

/** Peak resident memory of a process and its children (WORKERS > 1), sampled every 200 ms. */
class RssSampler {
  peakKb = 0;
  private timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 200);
  }
  private sample(): void {
    const pids = [this.pid, ...childPids(this.pid)];
    let kb = 0;
    for (const p of pids) {
      try {
        kb += Number(/VmRSS:\s+(\d+)/.exec(readStatus(p))?.[1] ?? 0);
      } catch {
        // the process is gone
      }
    }
    this.peakKb = Math.max(this.peakKb, kb);
  }
  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}
const readStatus = (pid: number): string => readFileSync(`/proc/${pid}/status`, 'utf8');

const randomId = (): string => Math.random().toString(36).slice(2, 12);

/** One system under wrk load: where, how, whose CPU to split out, and where its server-side histogram is. */
interface Target {
  name: string;
  url: string;
  mode: string[];
  account: Accounted;
  serverSide?: { method: string; route: string };
  kind: 'baseline' | 'koa' | 'seed' | 'headcount';
}

interface Measured extends WrkResult {
  serverP99Ms: number;
}

async function measure(t: Target, connections: number, durationS: number): Promise<Measured> {
  let before: Buckets | undefined;
  if (t.serverSide) before = await scrapeBuckets(t.url, t.serverSide.method, t.serverSide.route);
  const r = await wrk({ url: t.url, connections, durationS, threads: settings.wrkThreads, mode: t.mode, account: t.account });
  let serverP99Ms = NaN;
  if (t.serverSide) {
    const after = await scrapeBuckets(t.url, t.serverSide.method, t.serverSide.route);
    serverP99Ms = quantileBetween(before, after, 0.99);
  }
  return { ...r, serverP99Ms };
}

const summary = (r: Measured): string =>
  `${fmt(r.requestsPerSec)} req/s, p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms` +
  (Number.isFinite(r.serverP99Ms) ? ` (server ${fmt(r.serverP99Ms, 2)} ms)` : '') +
  `; CPU/req ${fmt(r.cpu.machineLessWrkUs, 1)} µs machine-wrk, ` +
  Object.entries(r.cpu.parts)
    .map(([k, v]) => `${k} ${fmt(v, 1)}`)
    .join(', ') +
  `, wrk ${fmt(r.cpu.wrkUs, 1)}, other ${fmt(r.cpu.otherUs, 1)} µs; cores: ` +
  Object.entries(r.cpu.coreShare)
    .map(([k, v]) => `${k} ${fmt(v, 2)}`)
    .join(', ') +
  `; errors ${r.errors}, non-2xx ${r.non2xx}`;

async function main(): Promise<void> {
  const log = createLogger('warn');
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
  console.log(`headcount benchmark${quick ? ' (QUICK: BENCH_QUICK=1, everything small)' : ''}: ${machine}`);
  console.log(`settings: ${JSON.stringify(settings)}`);
  console.log(
    `load average at start: ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (other tenants of the machine)`,
  );

  if (!(await ensureWrk())) {
    console.log('npm run bench needs wrk: install the Debian package wrk');
    process.exit(2);
  }

  // --- database, the service (1 and 2 workers), the baselines ---------------------------
  const dataDir = path.resolve('.data/bench-postgres');
  step('starting the managed local database (.data/bench-postgres) and a fresh database for the run');
  const cluster: LocalCluster = await startLocalCluster({ dataDir, port: Number(env.BENCH_PG_PORT ?? 54339), log });
  const benchDb = 'headcount_bench';
  const u = new URL(cluster.url);
  u.pathname = '/postgres';
  const adminUrl = u.toString();
  {
    const admin = createSql(adminUrl, { max: 1 });
    await admin`drop database if exists ${admin(benchDb)} with (force)`;
    await admin`create database ${admin(benchDb)}`;
    await admin.end();
  }
  u.pathname = `/${benchDb}`;
  const dbUrl = u.toString();
  await migrate({ databaseUrl: dbUrl, storageMode: (env.STORAGE_MODE as 'auto' | undefined) ?? 'auto', log });
  const pgPid = postmasterPid(dataDir);
  note(`PostgreSQL postmaster pid ${pgPid ?? '? (CPU of PostgreSQL not split out)'}`);
  const service = await startService(dbUrl, 1);
  const service2 = await startService(dbUrl, 2);
  const sql: Sql = createSql(dbUrl, { max: 4 });
  const mode = (await sql`select storage_mode from headcount_settings`)[0]?.storage_mode as string;
  note(
    `headcount ${service.url} (WORKERS=1, pid ${service.pid}) and ${service2.url} (WORKERS=2, pid ${service2.pid}); storage mode ${mode}`,
  );
  const rss = new RssSampler(service.pid);

  step('starting the references: bare node:http, Koa + @koa/router with no work, seed 000 (nginx + ngx_lua + Redis)');
  const startForked = async (file: string): Promise<{ child: ChildProcess; url: string }> => {
    const port = await freePort();
    const child = fork(path.resolve(file), [String(port)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    await new Promise<void>((resolve) => child.once('message', () => resolve()));
    return { child, url: `http://127.0.0.1:${port}` };
  };
  const baseline = await startForked('bench/baseline-server.mjs');
  const koa = await startForked('bench/koa-server.mjs');
  let seed: Seed000 | undefined;
  try {
    seed = await startSeed000();
  } catch (err) {
    note(`SKIPPED seed 000's architecture: ${(err as Error).message.split('\n')[0]}`);
  }

  // --- cost of a durable write, A B A B ---------------------------------------------------
  const stack = (pid: number): Accounted => ({ service: pid, store: pgPid });
  const targets: Target[] = [
    {
      name: 'bare node:http 200',
      kind: 'baseline',
      url: baseline.url,
      mode: ['collect'],
      account: { service: baseline.child.pid },
    },
    { name: 'Koa + @koa/router, no work', kind: 'koa', url: koa.url, mode: ['collect'], account: { service: koa.child.pid } },
    ...(seed
      ? [
          {
            name: 'seed 000: nginx + ngx_lua + Redis PFADD (not durable)',
            kind: 'seed' as const,
            url: seed.url,
            mode: ['collect'],
            account: { service: seed.nginxPid, store: seed.redisPid },
          },
        ]
      : []),
    {
      name: 'headcount GET /collect, durable',
      kind: 'headcount',
      url: service.url,
      mode: ['collect'],
      account: stack(service.pid),
      serverSide: { method: 'GET', route: '/collect' },
    },
    {
      name: 'headcount POST /analytics, durable',
      kind: 'headcount',
      url: service.url,
      mode: ['analytics'],
      account: stack(service.pid),
      serverSide: { method: 'POST', route: '/analytics' },
    },
    {
      name: 'headcount GET /collect, WORKERS=2',
      kind: 'headcount',
      url: service2.url,
      mode: ['collect'],
      account: stack(service2.pid),
      serverSide: { method: 'GET', route: '/collect' },
    },
  ];
  const raw: Record<string, Measured[]> = {};
  for (let run = 1; run <= settings.runs; run++) {
    for (const connections of settings.connections) {
      for (const t of targets) {
        step(`round ${run}/${settings.runs}: ${t.name}, wrk -t${settings.wrkThreads} -c${connections} -d${settings.durationS}s`);
        const r = await measure(t, connections, settings.durationS);
        note(summary(r));
        (raw[`${t.name}|${connections}`] ??= []).push(r);
        await sleep(500);
      }
    }
  }
  const costRows: ThroughputRow[] = [];
  for (const connections of settings.connections) {
    const med = (name: string, f: (r: Measured) => number): number => {
      const runs = raw[`${name}|${connections}`];
      return runs ? median(runs.map(f)) : NaN;
    };
    const ref = (kind: Target['kind']): string | undefined => targets.find((t) => t.kind === kind)?.name;
    const koaName = ref('koa')!;
    const seedName = ref('seed');
    for (const t of targets) {
      const key = `${t.name}|${connections}`;
      const runs = raw[key]!;
      const rps = med(t.name, (r) => r.requestsPerSec);
      const cpu = med(t.name, (r) => r.cpu.machineLessWrkUs);
      const stackUs = med(t.name, (r) => (r.cpu.parts.service ?? 0) + (r.cpu.parts.store ?? 0));
      costRows.push({
        scenario: t.name,
        connections,
        requestsPerSec: rps,
        ratio: rps / med(koaName, (r) => r.requestsPerSec),
        ratioSeed: seedName ? rps / med(seedName, (r) => r.requestsPerSec) : NaN,
        p50Ms: med(t.name, (r) => r.p50Ms),
        p99Ms: med(t.name, (r) => r.p99Ms),
        serverP99Ms: med(t.name, (r) => r.serverP99Ms),
        cpuUs: cpu,
        cpuRatioKoa: cpu / med(koaName, (r) => r.cpu.machineLessWrkUs),
        cpuRatioSeed: seedName ? cpu / med(seedName, (r) => r.cpu.machineLessWrkUs) : NaN,
        stackUs,
        stackRatioSeed: seedName ? stackUs / med(seedName, (r) => (r.cpu.parts.service ?? 0) + (r.cpu.parts.store ?? 0)) : NaN,
        serviceUs: med(t.name, (r) => r.cpu.parts.service ?? NaN),
        storeUs: med(t.name, (r) => r.cpu.parts.store ?? NaN),
        wrkUs: med(t.name, (r) => r.cpu.wrkUs),
        otherUs: med(t.name, (r) => r.cpu.otherUs),
        serviceCores: med(t.name, (r) => r.cpu.coreShare.service ?? NaN),
        storeCores: med(t.name, (r) => r.cpu.coreShare.store ?? NaN),
        wrkCores: med(t.name, (r) => r.cpu.coreShare.wrk ?? NaN),
        machineCores: med(t.name, (r) => r.cpu.coreShare.machine ?? NaN),
        runs: runs.length,
        errors: runs.reduce((n, r) => n + r.errors + r.non2xx, 0),
      });
    }
  }
  await stopChild(baseline.child);
  await stopChild(koa.child);
  await seed?.stop();

  // --- batch ingest: COPY straight into events, then POST /v1/events -------------------
  step(
    `batch ingest baseline: COPY of ${settings.batchEvents}-row batches straight into events, ${settings.batchConnections} connections, ${fmt(settings.copyRows)} rows`,
  );
  const batch: Record<string, unknown>[] = [];
  let copyEventsPerSec = NaN;
  {
    const copySql = createSql(dbUrl, { max: settings.batchConnections });
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
    batch.push(copy);
    copyEventsPerSec = copy.eventsPerSec;
    note(
      `${fmt(copy.eventsPerSec)} events/s; PostgreSQL ${fmt(copy.storeUsPerEvent, 2)} µs/event, the client building COPY text ${fmt(copy.clientUsPerEvent, 2)} µs/event`,
    );
  }
  // POST /v1/events without keys (V1_AUTH=none) and with an ingest key and its rate limit
  // (limits set above the offered load: this measures checking them, not refusing), run
  // A B A B: the cost of keys is the ratio between the two. Batches of 1,000 events, and
  // single events as beacons send them (the worst case for a per-request cost).
  step(
    `POST /v1/events without and with an ingest key: ${settings.batchEvents} events a request at -c${settings.batchConnections}, 1 at -c${settings.connections[0]}`,
  );
  const keyed = await startService(dbUrl, 1, [], {
    env: { V1_AUTH: 'keys', RATE_LIMIT_INGEST_PER_SECOND: '1000000', RATE_LIMIT_INGEST_BURST: '10000000' },
  });
  const keyedMode = await withBenchKey(dbUrl, ['events', '1', '$KEY']);
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
          account: stack(svc.pid),
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
      const r = await measure(a.target, a.connections, settings.durationS);
      note(summary(r));
      (authRaw[a.name] ??= []).push(r);
    }
  }
  await stopChild(keyed.child);
  const authMed = (name: string, f: (r: Measured) => number): number => median(authRaw[name]!.map(f));
  const keyCost: Record<string, unknown>[] = [];
  for (const a of auth) {
    const eventsPerSec = authMed(a.name, (r) => r.requestsPerSec) * a.events;
    const row = {
      name: a.name,
      events: a.events,
      connections: a.connections,
      eventsPerSec,
      ratioCopy: eventsPerSec / copyEventsPerSec,
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
    withKey.ratioNoKey = (withKey.eventsPerSec as number) / (plain.eventsPerSec as number);
    withKey.serviceCpuRatioNoKey = (withKey.serviceUsPerEvent as number) / (plain.serviceUsPerEvent as number);
    note(
      `${String(withKey.name)}: ${fmt(withKey.ratioNoKey as number, 2)}× the events/s without a key, service CPU/event ${fmt(withKey.serviceCpuRatioNoKey as number, 2)}×`,
    );
  }

  await stopChild(service2.child);

  // --- the read path ---------------------------------------------------------------------
  const latencyRows: LatencyRow[] = [];
  const record = (scenario: string, r: LatencyResult): void => {
    latencyRows.push({ scenario, requests: r.requests, p50Ms: r.p50Ms, p99Ms: r.p99Ms, maxMs: r.maxMs, failures: r.failures });
    note(
      `${scenario}: ${r.requests} requests, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(1)} ms`,
    );
  };
  const baseUrl = service.url;
  const today = floorDay(Date.now());
  const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
  const queries = async (label: string): Promise<void> => {
    for (const [name, p] of [
      ['GET /analytics current hour', () => `/analytics?timestamp=${Date.now()}`],
      ['GET /monthly_uniques', () => `/monthly_uniques?d=${isoDay(today)}`],
      ['GET /daily_uniques', () => `/daily_uniques?d=${isoDay(today - DAY_MS)}`],
      ['GET /report', () => `/report?page=/page/7`],
      // /v1/stats (issue 9): total over 30 days, day over 30 days in Asia/Kolkata, hour over 48 hours.
      ['GET /v1/stats total 30 days', () => `/v1/stats?from=${isoDay(today - 29 * DAY_MS)}&to=${isoDay(today + DAY_MS)}`],
      [
        'GET /v1/stats day 30 days Asia/Kolkata',
        () => `/v1/stats?from=${isoDay(today - 29 * DAY_MS)}&to=${isoDay(today + DAY_MS)}&granularity=day&timezone=Asia/Kolkata`,
      ],
      [
        'GET /v1/stats hour 48 hours',
        () =>
          `/v1/stats?from=${new Date(floorHour(Date.now()) - 47 * 3_600_000).toISOString()}&to=${new Date(floorHour(Date.now()) + 3_600_000).toISOString()}&granularity=hour`,
      ],
    ] as const) {
      step(`query latency ${label}: ${name}, 4 clients for ${settings.queryDurationS} s`);
      record(`${name} ${label}`, await latency({ base: baseUrl, workers: 4, durationS: settings.queryDurationS, path: p }));
    }
    // The SQL behind them, straight to the database (no HTTP).
    const hour = floorHour(Date.now());
    step(
      `query latency ${label}, SQL only: behind /analytics and /monthly_uniques, 4 at a time for ${settings.queryDurationS} s`,
    );
    record(
      `SQL current hour ${label}`,
      await callLatency({ workers: 4, durationS: settings.queryDurationS, call: () => hourSummary(sql, 'default', hour) }),
    );
    record(
      `SQL 30-day union ${label}`,
      await callLatency({
        workers: 4,
        durationS: settings.queryDurationS,
        call: () => distinctUsersOverDays(sql, 'default', today - 29 * DAY_MS, today + DAY_MS),
      }),
    );
  };

  const hour = floorHour(Date.now());
  step(`seeding ${fmt(settings.currentHourEvents)} events into the current hour`);
  let t0 = performance.now();
  await seedAnalytics(sql, hour, Math.max(hour + 1000, Date.now() - 1000), settings.currentHourEvents, 250_000);
  note(`${((performance.now() - t0) / 1000).toFixed(1)} s; refreshing the aggregates`);
  t0 = performance.now();
  await refreshAll(dbUrl);
  note(`refresh ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  step(
    `current-hour GET /analytics while ingesting ${settings.ingestRate} events/s (POST /analytics, paced), ${settings.durationS * 2} s`,
  );
  // Paced (open-loop) load: autocannon's overallRate; wrk has no rate limit.
  const ingest = throughput({
    url: baseUrl,
    rate: settings.ingestRate,
    connections: 32,
    durationS: settings.durationS * 2,
    method: 'POST',
    path: () => `/analytics?timestamp=${Date.now()}&user=${randomId()}&event=click`,
  });
  await sleep(1000);
  const reads = await latency({
    base: baseUrl,
    workers: 4,
    durationS: settings.durationS * 2 - 2,
    path: () => `/analytics?timestamp=${Date.now()}`,
  });
  const ingested = await ingest;
  record(`GET /analytics current hour while ingesting ${settings.ingestRate}/s`, reads);
  note(
    `ingest achieved ${Math.round(ingested.requestsPerSec)} events/s, p99 ${ingested.p99Ms} ms, errors ${ingested.errors + ingested.non2xx}`,
  );
  const body = await (await fetch(`${baseUrl}/analytics?timestamp=${Date.now()}`)).text();
  const currentHourCount = Number(/clicks,(\d+)/.exec(body)?.[1]) + Number(/impressions,(\d+)/.exec(body)?.[1]);
  note(`the current hour now answers ${fmt(currentHourCount)} events`);
  await queries('(small volume)');

  // --- accuracy ------------------------------------------------------------------------
  const accuracy: { users: number; estimate: number; errorPct: number }[] = [];
  const accuracyDays = settings.accuracyUsers.map((_, i) => today - (40 + i) * DAY_MS);
  for (const [i, users] of settings.accuracyUsers.entries()) {
    step(`accuracy: ${fmt(users)} distinct users (each seen twice) on ${isoDay(accuracyDays[i]!)}`);
    await seedDistinctUsers(sql, accuracyDays[i]!, users, `acc${users}-`);
  }
  await refreshAll(dbUrl);
  for (const [i, users] of settings.accuracyUsers.entries()) {
    const estimate = Number(await (await fetch(`${baseUrl}/daily_uniques?d=${isoDay(accuracyDays[i]!)}`)).text());
    accuracy.push({ users, estimate, errorPct: ((estimate - users) / users) * 100 });
    note(`${fmt(users)} users: /daily_uniques says ${fmt(estimate)} (${(((estimate - users) / users) * 100).toFixed(2)} %)`);
  }

  // --- read after a back-dated write ---------------------------------------------------
  // After the refresh above, every back-dated day lies below the aggregates' watermark:
  // the write must mark its hour stale, and the very next read must count it.
  const rawDays = Array.from({ length: 34 }, (_, i) => today - (2 + i) * DAY_MS).filter((d) => !accuracyDays.includes(d));
  let watermark = 'n/a (postgres mode: tables kept in the writing transaction)';
  if (mode === 'timescaledb') {
    const [w]: [{ through: Date }?] = await sql`select through from headcount_refresh_state`;
    watermark = w?.through.toISOString() ?? '?';
  }
  step(
    `read after a back-dated write: GET /collect?d=<a day 2-35 days ago> then at once GET /daily_uniques of that day, 1 client, ${settings.readAfterWriteS} s (watermark ${watermark})`,
  );
  const readAfterWrite = await (async () => {
    const expected = new Map<number, number>();
    for (const d of rawDays) expected.set(d, Number(await (await fetch(`${baseUrl}/daily_uniques?d=${isoDay(d)}`)).text()));
    const samples: number[] = [];
    let missed = 0;
    let failures = 0;
    const until = performance.now() + settings.readAfterWriteS * 1000;
    for (let i = 0; performance.now() < until; i++) {
      const day = rawDays[i % rawDays.length]!;
      const t = performance.now();
      const w = await fetch(
        `${baseUrl}/collect?cid=raw-${i}-${randomId()}&d=${Math.floor(day / 1000) + Math.floor(Math.random() * 86_400)}`,
      );
      await w.arrayBuffer();
      const r = await fetch(`${baseUrl}/daily_uniques?d=${isoDay(day)}`);
      const n = Number(await r.text());
      samples.push(performance.now() - t);
      if (w.status !== 200 || r.status !== 200) failures++;
      // Small days are exact (hll explicit/sparse): a new user must show at once.
      if (n < expected.get(day)! + 1) missed++;
      expected.set(day, Math.max(n, expected.get(day)! + 1));
    }
    samples.sort((a, b) => a - b);
    const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
    return { pairs: samples.length, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: samples.at(-1) ?? NaN, missed, failures, watermark };
  })();
  latencyRows.push({
    scenario: 'back-dated GET /collect, then GET /daily_uniques of that day (pair)',
    requests: readAfterWrite.pairs,
    p50Ms: readAfterWrite.p50Ms,
    p99Ms: readAfterWrite.p99Ms,
    maxMs: readAfterWrite.maxMs,
    failures: readAfterWrite.failures + readAfterWrite.missed,
  });
  note(
    `${readAfterWrite.pairs} pairs, p50 ${readAfterWrite.p50Ms.toFixed(2)} ms, p99 ${readAfterWrite.p99Ms.toFixed(2)} ms; reads that missed their write: ${readAfterWrite.missed}`,
  );

  // --- volume ----------------------------------------------------------------------------
  let volumeEvents = 0;
  if (settings.volumeDays > 0) {
    step(`volume: ${settings.volumeDays} days x ${fmt(settings.volumeEventsPerDay)} events/day, generated in PostgreSQL`);
    const t1 = performance.now();
    for (let d = 1; d <= settings.volumeDays; d++) {
      const day = today - d * DAY_MS;
      if (accuracyDays.includes(day) || day < Date.now() - 60 * DAY_MS) continue;
      await seedDay(sql, day, settings.volumeEventsPerDay);
      volumeEvents += settings.volumeEventsPerDay;
      if (d % 10 === 0) note(`${d} days, ${((performance.now() - t1) / 1000).toFixed(0)} s`);
    }
    note(`${fmt(volumeEvents)} events in ${((performance.now() - t1) / 1000).toFixed(0)} s; refreshing the aggregates`);
    const t2 = performance.now();
    await refreshAll(dbUrl);
    note(`refresh ${((performance.now() - t2) / 1000).toFixed(0)} s`);
    await queries(`(${settings.volumeDays}-day volume)`);
  }

  // --- results ----------------------------------------------------------------------------
  rss.stop();
  const peakRssMb = rss.peakKb / 1024;
  const [storedEvents]: [{ n: number }?] = await sql`select count(*)::int8 as n from events`;
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
    latency: latencyRows,
    readAfterBackDatedWrite: readAfterWrite,
    currentHourEvents: currentHourCount,
    accuracy,
    volume: { events: volumeEvents, storedEvents: storedEvents?.n },
    peakRssMb,
    raw,
  };
  const dir = path.resolve('bench/results');
  mkdirSync(dir, { recursive: true });
  const stamp = results.when.replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(results, null, 2));
  chart(
    path.join(dir, `${stamp}.png`),
    `headcount ${results.when.slice(0, 16)} (${mode} mode, ${os.cpus().length} cores${quick ? ', quick' : ''})`,
    costRows,
    latencyRows,
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
        String(b.name),
        fmt(b.eventsPerSec as number),
        b.ratioCopy === undefined ? '1.00' : fmt(b.ratioCopy as number, 2),
        fmt(b.storeUsPerEvent as number, 2),
        fmt((b.serviceUsPerEvent ?? b.clientUsPerEvent) as number, 2),
      ]),
    ),
  );
  console.log('');
  console.log(
    table(
      ['/v1 keys', 'connections', 'events/s', 'x without key', 'service µs/event', 'PostgreSQL µs/event', 'p99 ms'],
      keyCost.map((k) => [
        String(k.name),
        String(k.connections),
        fmt(k.eventsPerSec as number),
        k.ratioNoKey === undefined ? '1.00' : fmt(k.ratioNoKey as number, 2),
        fmt(k.serviceUsPerEvent as number, 2),
        fmt(k.storeUsPerEvent as number, 2),
        fmt(k.p99Ms as number, 1),
      ]),
    ),
  );
  console.log('');
  console.log(latencyTable(latencyRows));
  console.log(`reads that missed their back-dated write: ${readAfterWrite.missed} of ${readAfterWrite.pairs}`);
  console.log('');
  console.log(
    table(
      ['distinct users', '/daily_uniques', 'error'],
      accuracy.map((a) => [fmt(a.users), fmt(a.estimate), `${a.errorPct.toFixed(2)} %`]),
    ),
  );
  console.log(`\npeak RSS of the service (WORKERS=1): ${peakRssMb.toFixed(0)} MB`);
  console.log(`results: bench/results/${stamp}.json and .png`);

  // --- cleanup ----------------------------------------------------------------------------
  await stopChild(service.child);
  await sql.end();
  if (!settings.keep) {
    const admin = createSql(adminUrl, { max: 1 });
    await admin`drop database if exists ${admin(benchDb)} with (force)`;
    await admin.end();
  }
  await cluster.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
