/** One round of wrk against one system, as the cost and batch ingest phases run it. */
import { fmt } from '../report.js';
import { type Buckets, quantileBetween, scrapeBuckets } from '../server-metrics.js';
import type { Accounted } from '../system.js';
import { wrk, type WrkResult } from '../wrk.js';

/** One system under wrk load: where, how, whose CPU to split out, and where its server-side histogram is. */
export interface Target {
  name: string;
  url: string;
  mode: string[];
  account: Accounted;
  serverSide?: { method: string; route: string };
  kind: 'baseline' | 'koa' | 'seed' | 'headcount';
}

export interface Measured extends WrkResult {
  serverP99Ms: number;
}

/** A headcount process tree and PostgreSQL, as a target's CPU accounting. */
export const stackOf = (servicePid: number, pgPid: number | undefined): Accounted => ({ service: servicePid, store: pgPid });

export async function measure(t: Target, connections: number, durationS: number, threads: number): Promise<Measured> {
  let before: Buckets | undefined;
  if (t.serverSide) before = await scrapeBuckets(t.url, t.serverSide.method, t.serverSide.route);
  const r = await wrk({ url: t.url, connections, durationS, threads, mode: t.mode, account: t.account });
  let serverP99Ms = NaN;
  if (t.serverSide) {
    const after = await scrapeBuckets(t.url, t.serverSide.method, t.serverSide.route);
    serverP99Ms = quantileBetween(before, after, 0.99);
  }
  return { ...r, serverP99Ms };
}

/** One round on one line: throughput, latency, CPU per request and where it went. */
export const summary = (r: Measured): string =>
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
