import http from 'node:http';
import autocannon from 'autocannon';

export interface LoadResult {
  requestsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

/**
 * Load with autocannon for `durationS`: closed-loop at `connections` or, with `rate`,
 * open-loop at that many requests/s overall (steady ingest). Each request's path comes
 * from `path()`, so the baseline and the service get the same work.
 */
export async function throughput(opts: {
  url: string;
  connections: number;
  durationS: number;
  rate?: number;
  method?: 'GET' | 'POST';
  path: () => string;
}): Promise<LoadResult> {
  const result = await autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationS,
    ...(opts.rate ? { overallRate: opts.rate } : {}),
    requests: [{ method: opts.method ?? 'GET', setupRequest: (req) => ({ ...req, path: opts.path() }) }],
  });
  return {
    requestsPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

export interface LatencyResult {
  requests: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  failures: number;
  /** How many answers had each HTTP status (HTTP latencies only). */
  statuses?: Record<string, number>;
}

/**
 * Query latency with microsecond resolution (autocannon rounds to whole ms): `workers`
 * keep-alive loops, each sending the next request when the last one answered.
 */
export async function latency(opts: {
  base: string;
  workers: number;
  durationS: number;
  path: () => string;
  /** Keep going past durationS until this many answers (slow shapes), default 0. */
  minRequests?: number;
}): Promise<LatencyResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.workers });
  const { hostname, port } = new URL(opts.base);
  const samples: number[] = [];
  let failures = 0;
  const statuses: Record<string, number> = {};
  const until = performance.now() + opts.durationS * 1000;
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const started = performance.now();
      http
        .get({ host: hostname, port, path: opts.path(), agent }, (res) => {
          res.resume();
          res.on('end', () => {
            samples.push(performance.now() - started);
            statuses[String(res.statusCode)] = (statuses[String(res.statusCode)] ?? 0) + 1;
            if (res.statusCode !== 200) failures++;
            resolve();
          });
        })
        .on('error', () => {
          failures++;
          resolve();
        });
    });
  await Promise.all(
    Array.from({ length: opts.workers }, async () => {
      while (performance.now() < until || samples.length + failures < (opts.minRequests ?? 0)) await one();
    }),
  );
  agent.destroy();
  return { ...summarize(samples, failures), statuses };
}

export const median = (values: number[]): number => {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

/** Latency of a database call itself (what a cache miss costs), `workers` at a time. */
export async function callLatency(opts: {
  workers: number;
  durationS: number;
  call: () => Promise<unknown>;
}): Promise<LatencyResult> {
  const samples: number[] = [];
  let failures = 0;
  const until = performance.now() + opts.durationS * 1000;
  await Promise.all(
    Array.from({ length: opts.workers }, async () => {
      while (performance.now() < until) {
        const started = performance.now();
        try {
          await opts.call();
        } catch {
          failures++;
        }
        samples.push(performance.now() - started);
      }
    }),
  );
  return summarize(samples, failures);
}

function summarize(samples: number[], failures: number): LatencyResult {
  samples.sort((a, b) => a - b);
  const at = (q: number): number => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  return { requests: samples.length, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: samples.at(-1) ?? NaN, failures };
}
