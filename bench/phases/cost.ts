/**
 * The cost of a durable write: every target under the same wrk load, round after round
 * (A B C A B C), and per target the medians of the rounds against Koa and seed 000.
 */
import { median } from '../load.js';
import type { ThroughputRow } from '../report.js';
import type { BenchContext } from './context.js';
import { sleep } from './context.js';
import { measure, type Measured, stackOf, summary, type Target } from './measure.js';
import type { References } from './stack.js';

export interface Cost {
  /** One row per target and connection count (BENCH_CONNECTIONS). */
  rows: ThroughputRow[];
  /** Every round, by `<target>|<connections>`. */
  raw: Record<string, Measured[]>;
}

function targetsOf(ctx: BenchContext, refs: References): Target[] {
  const { service, service2, pgPid } = ctx;
  return [
    {
      name: 'bare node:http 200',
      kind: 'baseline',
      url: refs.baseline.url,
      mode: ['collect'],
      account: { service: refs.baseline.child.pid },
    },
    {
      name: 'Koa + @koa/router, no work',
      kind: 'koa',
      url: refs.koa.url,
      mode: ['collect'],
      account: { service: refs.koa.child.pid },
    },
    ...(refs.seed
      ? [
          {
            name: 'seed 000: nginx + ngx_lua + Redis PFADD (not durable)',
            kind: 'seed' as const,
            url: refs.seed.url,
            mode: ['collect'],
            account: { service: refs.seed.nginxPid, store: refs.seed.redisPid },
          },
        ]
      : []),
    {
      name: 'headcount GET /collect, durable',
      kind: 'headcount',
      url: service.url,
      mode: ['collect'],
      account: stackOf(service.pid, pgPid),
      serverSide: { method: 'GET', route: '/collect' },
    },
    {
      name: 'headcount POST /analytics, durable',
      kind: 'headcount',
      url: service.url,
      mode: ['analytics'],
      account: stackOf(service.pid, pgPid),
      serverSide: { method: 'POST', route: '/analytics' },
    },
    {
      name: 'headcount POST /v1/events, one event, durable',
      kind: 'headcount',
      url: service.url,
      mode: ['event'],
      account: stackOf(service.pid, pgPid),
      serverSide: { method: 'POST', route: '/v1/events' },
    },
    {
      name: 'headcount GET /collect, WORKERS=2',
      kind: 'headcount',
      url: service2.url,
      mode: ['collect'],
      account: stackOf(service2.pid, pgPid),
      serverSide: { method: 'GET', route: '/collect' },
    },
  ];
}

export async function measureCost(ctx: BenchContext, refs: References): Promise<Cost> {
  const { settings } = ctx;
  const { step, note } = ctx.progress;
  const targets = targetsOf(ctx, refs);
  const raw: Record<string, Measured[]> = {};
  // Steady state, not a fresh database's first minute: each headcount target is loaded
  // once, then the database analyzed (what autovacuum does within its first naptime).
  // Before it, the plans the service's sessions cached while the tables were empty stay
  // in use: headcount_visits looked up by its (site, started) index and deleted from by a
  // sequential scan, 56 ms a batch after 8,000 visits (docs/benchmarks.md, "A fresh
  // database's first minute").
  for (const t of targets.filter((x) => x.kind === 'headcount')) {
    step(`warm-up: ${t.name}, ${settings.warmupS} s`);
    await measure(t, settings.connections[0]!, settings.warmupS, settings.wrkThreads);
  }
  await ctx.sql`analyze`;
  for (let run = 1; run <= settings.runs; run++) {
    for (const connections of settings.connections) {
      for (const t of targets) {
        step(`round ${run}/${settings.runs}: ${t.name}, wrk -t${settings.wrkThreads} -c${connections} -d${settings.durationS}s`);
        const r = await measure(t, connections, settings.durationS, settings.wrkThreads);
        note(summary(r));
        (raw[`${t.name}|${connections}`] ??= []).push(r);
        await sleep(500);
      }
    }
  }
  const rows: ThroughputRow[] = [];
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
      rows.push({
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
  return { rows, raw };
}
