/**
 * npm run bench:auth — the CPU a /v1 key and its rate limit cost one request, measured in
 * process: the real middleware (src/v1/auth), KeyStore and RateLimiter on the bench
 * cluster, called on a Koa context built from a real request, against the same
 * middleware with V1_AUTH=none. Throughput ratios on a shared 2-core machine vary by
 * ±10 % from one pair of service processes to the next; this is the cost itself.
 */
import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import path from 'node:path';
import Koa from 'koa';
import { createSql } from '../src/db/client.js';
import { createLogger } from '../src/log.js';
import { createKey, KeyStore } from '../src/v1/auth/keys.js';
import { type AuthDeps, requireKey } from '../src/v1/auth/middleware.js';
import { RateLimiter } from '../src/v1/auth/rate-limit.js';
import { benchDatabase } from './database.js';
import { median } from './load.js';
import { table } from './report.js';
import { loadConfig } from '../src/config.js';
import { AuthFailureLimit } from '../src/v1/auth/failures.js';

const iterations = Number(process.env.BENCH_AUTH_ITERATIONS ?? 200_000);
const runs = Number(process.env.BENCH_RUNS ?? 5);

async function main(): Promise<void> {
  const log = createLogger('warn');
  const db = await benchDatabase('headcount_bench_auth', log, {
    dataDir: path.resolve('.data/bench-postgres'),
    port: Number(process.env.BENCH_PG_PORT ?? 54339),
  });
  const sql = createSql(db.url, { max: 2 });
  const { key } = await createKey(sql, { scope: 'ingest', site: 'default', name: 'bench' });

  const app = new Koa();
  const context = (): Koa.Context => {
    const req = new IncomingMessage(new Socket());
    req.method = 'POST';
    req.url = '/v1/events';
    req.headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };
    return app.createContext(req, new ServerResponse(req));
  };
  // The default ingest limit would refuse most of these calls: the bench's own limits
  // are above the offered load, as in npm run bench, so that taking a token is measured.
  const limits = { ingest: { ratePerSecond: 1_000_000, burst: 10_000_000 }, read: { ratePerSecond: 10, burst: 40 } };
  const failures = new AuthFailureLimit(loadConfig({}).authFailures);
  const variants: [string, AuthDeps][] = [
    ['V1_AUTH=none', { limiter: new RateLimiter(sql), keys: null, limits, failures }],
    ['ingest key + rate limit', { limiter: new RateLimiter(sql), keys: new KeyStore(sql), limits, failures }],
  ];
  const next = (): Promise<void> => Promise.resolve();
  const perCall: Record<string, number[]> = {};
  for (let run = 0; run <= runs; run++) {
    for (const [name, deps] of variants) {
      const middleware = requireKey('ingest', deps, { allowQueryKey: true });
      const contexts = Array.from({ length: 1000 }, context);
      const started = process.cpuUsage();
      for (let i = 0; i < iterations; i++) await middleware(contexts[i % contexts.length]!, next);
      const used = process.cpuUsage(started);
      // Round 0 warms up (JIT, the key's lookup, the first lease) and is not counted.
      if (run > 0) (perCall[name] ??= []).push(((used.user + used.system) / iterations) * 1000);
    }
  }
  const rows = variants.map(([name]) => [
    name,
    median(perCall[name]!).toFixed(0),
    perCall[name]!.map((v) => v.toFixed(0)).join(', '),
  ]);
  console.log(`\nthe /v1 auth middleware, ${iterations.toLocaleString('en-US')} calls a run, ${runs} runs, medians\n`);
  console.log(table(['variant', 'CPU ns per request', 'per run'], rows));
  const cost = (median(perCall[variants[1]![0]]!) - median(perCall[variants[0]![0]]!)) / 1000;
  console.log(`\na key and its rate limit cost ${cost.toFixed(2)} µs of CPU per request`);
  await sql.end();
  await db.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
