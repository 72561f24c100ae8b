/**
 * npm run bench: headcount against a bare node:http server, measured the same way in
 * the same run, so every figure is also a ratio to that baseline. See README "Benchmark".
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
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
import { callLatency, latency, type LatencyResult, median, throughput } from './load.js';
import { chart, latencyTable, type LatencyRow, table, throughputTable, type ThroughputRow } from './report.js';
import { refreshAll, seedAnalytics, seedDay, seedDistinctUsers } from './seed.js';

const env = process.env;
const settings = {
  durationS: Number(env.BENCH_DURATION_S ?? 10),
  runs: Number(env.BENCH_RUNS ?? 3),
  connections: [64, 256],
  currentHourEvents: Number(env.BENCH_CURRENT_HOUR_EVENTS ?? 1_000_000),
  ingestRate: Number(env.BENCH_INGEST_RATE ?? 5000),
  volumeDays: Number(env.BENCH_VOLUME_DAYS ?? 60),
  volumeEventsPerDay: Number(env.BENCH_VOLUME_EVENTS_PER_DAY ?? 1_000_000),
  accuracyUsers: [1_000, 100_000, 1_000_000],
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

/** Peak resident memory of a process (and its children: WORKERS > 1), sampled every 200 ms. */
class RssSampler {
  peakKb = 0;
  private timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 200);
  }
  private sample(): void {
    try {
      const pids = [this.pid, ...childPids(this.pid)];
      const kb = pids.reduce(
        (sum, p) => sum + Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0),
        0,
      );
      this.peakKb = Math.max(this.peakKb, kb);
    } catch {
      // the process is gone
    }
  }
  stop(): void {
    this.sample();
    clearInterval(this.timer);
  }
}
function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function waitForOutput(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${text}":\n${out}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
    child.once('exit', (code) => reject(new Error(`exited with ${code} before "${text}":\n${out}`)));
  });
}

const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

const randomId = (): string => Math.random().toString(36).slice(2, 12);

async function main(): Promise<void> {
  const log = createLogger('warn');
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.release()}`;
  console.log(`headcount benchmark: ${machine}`);
  console.log(`settings: ${JSON.stringify(settings)}`);

  // --- the service and the baseline --------------------------------------------------
  let cluster: LocalCluster | undefined;
  let service: ChildProcess | undefined;
  let baseUrl = env.BASE_URL;
  let dbUrl = env.BENCH_DATABASE_URL;
  let adminUrl: string | undefined;
  const benchDb = 'headcount_bench';
  if (!baseUrl) {
    step('starting the managed local database (.data/bench-postgres) and a fresh database for the run');
    cluster = await startLocalCluster({
      dataDir: path.resolve('.data/bench-postgres'),
      port: Number(env.BENCH_PG_PORT ?? 54339),
      log,
    });
    const u = new URL(cluster.url);
    u.pathname = '/postgres';
    adminUrl = u.toString();
    const admin = createSql(adminUrl, { max: 1 });
    await admin`drop database if exists ${admin(benchDb)} with (force)`;
    await admin`create database ${admin(benchDb)}`;
    await admin.end();
    u.pathname = `/${benchDb}`;
    dbUrl = u.toString();
    await migrate({ databaseUrl: dbUrl, storageMode: (env.STORAGE_MODE as 'auto' | undefined) ?? 'auto', log });
    const port = await freePort();
    service = spawn(process.execPath, ['dist/server.js'], {
      env: { ...env, DATABASE_URL: dbUrl, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info', MIGRATE_ON_START: 'false' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await waitForOutput(service, 'headcount listening', 60_000);
    baseUrl = `http://127.0.0.1:${port}`;
  }
  const sql: Sql | undefined = dbUrl ? createSql(dbUrl, { max: 2 }) : undefined;
  const mode = sql ? ((await sql`select storage_mode from headcount_settings`)[0]?.storage_mode as string) : 'unknown';
  note(`service ${baseUrl}, storage mode ${mode}${service ? `, pid ${service.pid}` : ''}`);
  const rss = service?.pid ? new RssSampler(service.pid) : undefined;

  step('starting the baseline: a bare node:http server answering 200 with an empty body');
  const baselinePort = await freePort();
  const baseline = fork(path.resolve('bench/baseline-server.mjs'), [String(baselinePort)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  await new Promise<void>((resolve) => baseline.once('message', () => resolve()));
  const baselineUrl = `http://127.0.0.1:${baselinePort}`;
  const koaPort = await freePort();
  const koa = fork(path.resolve('bench/koa-server.mjs'), [String(koaPort)], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  await new Promise<void>((resolve) => koa.once('message', () => resolve()));

  // --- durable ingest throughput ---------------------------------------------------------
  const scenarios = [
    { name: 'baseline node:http', url: baselineUrl, method: 'GET' as const, path: () => `/collect?cid=${randomId()}` },
    {
      name: 'Koa + router, no database',
      url: `http://127.0.0.1:${koaPort}`,
      method: 'GET' as const,
      path: () => `/collect?cid=${randomId()}`,
    },
    { name: 'GET /collect', url: baseUrl, method: 'GET' as const, path: () => `/collect?cid=${randomId()}` },
    {
      name: 'POST /analytics',
      url: baseUrl,
      method: 'POST' as const,
      path: () => `/analytics?timestamp=${Date.now()}&user=${randomId()}&event=${Math.random() < 0.2 ? 'click' : 'impression'}`,
    },
  ];
  const raw: Record<string, { requestsPerSec: number; p50Ms: number; p99Ms: number; errors: number }[]> = {};
  for (let run = 1; run <= settings.runs; run++) {
    for (const connections of settings.connections) {
      for (const s of scenarios) {
        step(`throughput run ${run}/${settings.runs}: ${s.name} at ${connections} connections for ${settings.durationS} s`);
        const r = await throughput({ url: s.url, connections, durationS: settings.durationS, method: s.method, path: s.path });
        note(
          `${Math.round(r.requestsPerSec).toLocaleString('en-US')} req/s, p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, errors ${r.errors}, non-2xx ${r.non2xx}`,
        );
        (raw[`${s.name}|${connections}`] ??= []).push({ ...r, errors: r.errors + r.non2xx });
        await sleep(1000);
      }
    }
  }
  const throughputRows: ThroughputRow[] = [];
  for (const connections of settings.connections) {
    const base = median(raw[`baseline node:http|${connections}`]!.map((r) => r.requestsPerSec));
    for (const s of scenarios) {
      const runs = raw[`${s.name}|${connections}`]!;
      const rps = median(runs.map((r) => r.requestsPerSec));
      throughputRows.push({
        scenario: s.name,
        connections,
        requestsPerSec: rps,
        ratio: rps / base,
        p50Ms: median(runs.map((r) => r.p50Ms)),
        p99Ms: median(runs.map((r) => r.p99Ms)),
        runs: runs.length,
        errors: runs.reduce((n, r) => n + r.errors, 0),
      });
    }
  }

  // --- queries -----------------------------------------------------------------------
  const latencyRows: LatencyRow[] = [];
  const record = (scenario: string, r: LatencyResult): void => {
    latencyRows.push({ scenario, requests: r.requests, p50Ms: r.p50Ms, p99Ms: r.p99Ms, maxMs: r.maxMs, failures: r.failures });
    note(
      `${scenario}: ${r.requests} requests, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, max ${r.maxMs.toFixed(1)} ms`,
    );
  };
  const today = floorDay(Date.now());
  const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
  const queries = (label: string): Promise<void> =>
    (async () => {
      for (const [name, p] of [
        ['GET /analytics current hour', () => `/analytics?timestamp=${Date.now()}`],
        ['GET /monthly_uniques', () => `/monthly_uniques?d=${isoDay(today)}`],
        ['GET /daily_uniques', () => `/daily_uniques?d=${isoDay(today - DAY_MS)}`],
        ['GET /report', () => `/report?page=/page/7`],
      ] as const) {
        step(`query latency ${label}: ${name}, 4 clients for 5 s`);
        record(`${name} ${label}`, await latency({ base: baseUrl, workers: 4, durationS: 5, path: p }));
      }
      // What a cache miss costs: the same queries straight to the database.
      if (sql) {
        const hour = floorHour(Date.now());
        step(`query latency ${label}, uncached: the SQL behind /analytics and /monthly_uniques, 4 at a time for 3 s`);
        record(`SQL current hour ${label}`, await callLatency({ workers: 4, durationS: 3, call: () => hourSummary(sql, 'default', hour) }));
        record(
          `SQL 30-day union ${label}`,
          await callLatency({
            workers: 4,
            durationS: 3,
            call: () => distinctUsersOverDays(sql, 'default', today - 29 * DAY_MS, today + DAY_MS),
          }),
        );
      }
    })();

  let currentHourCount = NaN;
  if (sql) {
    const hour = floorHour(Date.now());
    step(`seeding ${settings.currentHourEvents.toLocaleString('en-US')} events into the current hour`);
    let t0 = performance.now();
    await seedAnalytics(sql, hour, Math.max(hour + 1000, Date.now() - 1000), settings.currentHourEvents, 250_000);
    note(`${((performance.now() - t0) / 1000).toFixed(1)} s; refreshing the aggregates`);
    t0 = performance.now();
    await refreshAll(dbUrl!);
    note(`refresh ${((performance.now() - t0) / 1000).toFixed(1)} s`);

    step(
      `current-hour GET /analytics while ingesting ${settings.ingestRate} events/s (POST /analytics), ${settings.durationS * 2} s`,
    );
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
    currentHourCount = Number(/clicks,(\d+)/.exec(body)?.[1]) + Number(/impressions,(\d+)/.exec(body)?.[1]);
    note(`the current hour now answers ${currentHourCount.toLocaleString('en-US')} events`);
  }
  await queries('(small volume)');

  // --- accuracy ------------------------------------------------------------------------
  const accuracy: { users: number; estimate: number; errorPct: number }[] = [];
  const accuracyDays = settings.accuracyUsers.map((_, i) => today - (40 + i) * DAY_MS);
  if (sql) {
    for (const [i, users] of settings.accuracyUsers.entries()) {
      step(`accuracy: ${users.toLocaleString('en-US')} distinct users (each seen twice) on ${isoDay(accuracyDays[i]!)}`);
      await seedDistinctUsers(sql, accuracyDays[i]!, users, `acc${users}-`);
    }
    await refreshAll(dbUrl!);
    for (const [i, users] of settings.accuracyUsers.entries()) {
      const estimate = Number(await (await fetch(`${baseUrl}/daily_uniques?d=${isoDay(accuracyDays[i]!)}`)).text());
      accuracy.push({ users, estimate, errorPct: ((estimate - users) / users) * 100 });
      note(
        `${users.toLocaleString('en-US')} users: /daily_uniques says ${estimate.toLocaleString('en-US')} (${(((estimate - users) / users) * 100).toFixed(2)} %)`,
      );
    }
  }

  // --- volume ----------------------------------------------------------------------------
  let volumeEvents = 0;
  if (sql && settings.volumeDays > 0) {
    step(
      `volume: ${settings.volumeDays} days x ${settings.volumeEventsPerDay.toLocaleString('en-US')} events/day, generated in PostgreSQL (generate_series, one statement a day)`,
    );
    const t0 = performance.now();
    for (let d = 1; d <= settings.volumeDays; d++) {
      const day = today - d * DAY_MS;
      if (accuracyDays.includes(day) || day < Date.now() - 60 * DAY_MS) continue;
      await seedDay(sql, day, settings.volumeEventsPerDay);
      volumeEvents += settings.volumeEventsPerDay;
      if (d % 10 === 0) note(`${d} days, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    }
    note(
      `${volumeEvents.toLocaleString('en-US')} events in ${((performance.now() - t0) / 1000).toFixed(0)} s; refreshing the aggregates`,
    );
    const t1 = performance.now();
    await refreshAll(dbUrl!);
    note(`refresh ${((performance.now() - t1) / 1000).toFixed(0)} s`);
    await queries('(60-day volume)');
  }

  // --- results ----------------------------------------------------------------------------
  rss?.stop();
  const peakRssMb = rss ? rss.peakKb / 1024 : NaN;
  const [storedEvents]: [{ n: number }?] = sql ? await sql`select count(*)::int8 as n from events` : [];
  const results = {
    when: new Date().toISOString(),
    machine,
    storageMode: mode,
    settings,
    throughput: throughputRows,
    latency: latencyRows,
    currentHourEvents: currentHourCount,
    accuracy,
    volume: { events: volumeEvents, storedEvents: storedEvents?.n },
    peakRssMb,
    rawThroughput: raw,
  };
  const dir = path.resolve('bench/results');
  mkdirSync(dir, { recursive: true });
  const stamp = results.when.replace(/[:.]/g, '-');
  writeFileSync(path.join(dir, `${stamp}.json`), JSON.stringify(results, null, 2));
  chart(
    path.join(dir, `${stamp}.png`),
    `headcount ${results.when.slice(0, 16)} (${mode} mode, ${os.cpus().length} cores)`,
    throughputRows,
    latencyRows,
  );

  console.log(
    `\nheadcount benchmark, ${results.when} — ${machine}; storage mode ${mode}; medians of ${settings.runs} runs of ${settings.durationS} s\n`,
  );
  console.log(throughputTable(throughputRows));
  console.log('');
  console.log(latencyTable(latencyRows));
  console.log('');
  console.log(
    table(
      ['distinct users', '/daily_uniques', 'error'],
      accuracy.map((a) => [a.users.toLocaleString('en-US'), a.estimate.toLocaleString('en-US'), `${a.errorPct.toFixed(2)} %`]),
    ),
  );
  console.log(
    `\npeak RSS of the service: ${Number.isFinite(peakRssMb) ? `${peakRssMb.toFixed(0)} MB` : 'not measured (BASE_URL)'}`,
  );
  console.log(`results: bench/results/${stamp}.json and .png`);

  // --- cleanup ----------------------------------------------------------------------------
  await stopChild(baseline);
  await stopChild(koa);
  if (service) await stopChild(service);
  await sql?.end();
  if (adminUrl && !settings.keep) {
    const admin = createSql(adminUrl, { max: 1 });
    await admin`drop database if exists ${admin(benchDb)} with (force)`;
    await admin.end();
  }
  await cluster?.stop();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
