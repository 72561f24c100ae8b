/**
 * npm run bench:dimensions — what the dimensions cost ingest: 1,000-event POST /v1/events
 * batches with every standard dimension and 3 properties against the same batches without
 * them, sent one after the other to the service (from dist/, one worker) on a cluster of
 * its own. The CPU of the service process and of PostgreSQL (every backend: the insert,
 * its triggers) per event, read from /proc around each round; rounds alternate between
 * the two kinds of batch so that both see the same machine. STORAGE_MODE picks the mode.
 * Each round drains the queue its batches made before it ends (the roll-up is part of an
 * event's cost), and PostgreSQL's CPU is split into the roll-up's backends and the rest.
 * BENCH_DIMENSIONS_DB=headcount_bench: measure on that database of the bench cluster
 * (.data/bench-postgres) as it is, e.g. the 60 days BENCH_KEEP=1 npm run bench left, to
 * see what the same batches cost at volume.
 */
import http from 'node:http';
import path from 'node:path';
import { freePort } from '../src/db/local-cluster.js';
import { createLogger } from '../src/log.js';
import { benchDatabase } from './database.js';
import { median } from './load.js';
import { table } from './report.js';
import { drained, drainSession, rollUpSpent, rollUpTicks } from './roll-up-cpu.js';
import { startService, stopChild } from './service.js';
import { CLOCK_TICKS, postmasterPid, treeTicks } from './system.js';

const env = process.env;
const rounds = Number(env.BENCH_DIMENSIONS_ROUNDS ?? 5);
const batchesPerRound = Number(env.BENCH_DIMENSIONS_BATCHES ?? 200);
const BATCH = 1000;

const REFERRERS = [
  'https://www.google.com/',
  'https://www.google.de/search?q=headcount',
  'https://news.ycombinator.com/item?id=42424242',
  'https://t.co/AbCdEf123',
  'https://www.reddit.com/r/analytics/comments/abc/',
  'android-app://com.google.android.gm/',
  'https://duckduckgo.com/',
  'https://github.com/headcount/headcount',
];
const COUNTRIES = ['US', 'DE', 'in', 'GB', 'fr', 'BR', 'JP', 'PL', 'NL', 'ES'];
const DEVICES = ['desktop', 'mobile', 'Mobile', 'tablet'];
const BROWSERS = ['Chrome', 'Safari', 'Firefox', 'Edge', 'Samsung Internet'];
const OSES = ['Windows', 'macOS', 'iOS', 'Android', 'Linux'];
const SOURCES = ['newsletter', 'twitter', 'google', 'partner-site'];

/** `count` batches of BATCH events; `dimensions`: each with every standard dimension and 3 properties. */
function batches(count: number, dimensions: boolean): string[] {
  // The same batches every run: values picked by a multiplicative hash of a counter.
  let n = 0;
  const next = (): number => (Math.imul(++n, 0x9e3779b1) >>> 0) / 2 ** 32;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  return Array.from({ length: count }, () => {
    const events = Array.from({ length: BATCH }, () => {
      const base = {
        user: `user-${Math.floor(next() * 200_000)}`,
        kind: 'pageview',
        page: `/docs/page-${Math.floor(next() * 300)}`,
      };
      if (!dimensions) return base;
      return {
        ...base,
        referrer: pick(REFERRERS),
        utm_source: pick(SOURCES),
        utm_medium: pick(['email', 'social', 'cpc']),
        utm_campaign: pick(['black-friday-2026', 'launch', 'winter sale']),
        utm_content: pick(['header-link', 'footer', 'banner-a']),
        utm_term: pick(['analytics', 'distinct users', 'hll']),
        country: pick(COUNTRIES),
        device: pick(DEVICES),
        browser: pick(BROWSERS),
        os: pick(OSES),
        props: { plan: pick(['free', 'pro', 'team']), ab_test: pick(['a', 'b']), locale: pick(['en-US', 'de-DE', 'hi-IN']) },
      };
    });
    return JSON.stringify({ events });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

function post(url: URL, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () =>
          res.statusCode === 200 && text.startsWith(`{"accepted":${BATCH},`)
            ? resolve()
            : reject(new Error(`${res.statusCode}: ${text.slice(0, 300)}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function main(): Promise<void> {
  const log = createLogger('warn');
  const reuse = env.BENCH_DIMENSIONS_DB;
  const dataDir = path.resolve(reuse ? '.data/bench-postgres' : '.data/bench-dimensions');
  const db = await benchDatabase(
    reuse ?? 'headcount_bench_dimensions',
    log,
    { dataDir, port: await freePort() },
    { reuse: !!reuse },
  );
  const drain = drainSession(db.url);
  // BENCH_NODE_ARGS: e.g. --cpu-prof --cpu-prof-dir=/tmp/prof, to see where the service spends it.
  const service = await startService(db.url, 1, (env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean));
  const postgres = postmasterPid(dataDir);
  if (postgres === undefined) throw new Error(`no postmaster in ${dataDir}`);
  const url = new URL('/v1/events', service.url);
  const variants = [
    { name: 'without dimensions', bodies: batches(batchesPerRound, false) },
    { name: 'every dimension + 3 props', bodies: batches(batchesPerRound, true) },
  ];
  const perEvent: Record<string, { service: number[]; postgres: number[]; rollUp: number[] }> = {};
  const µsPerEvent = (ticks: number): number => ((ticks / CLOCK_TICKS) * 1e6) / (batchesPerRound * BATCH);
  try {
    // Round 0 warms up (JIT, prepared statements, the first chunks) and is not counted.
    for (let round = 0; round <= rounds; round++) {
      for (const variant of round % 2 === 0 ? variants : [...variants].reverse()) {
        await drained(drain);
        const rollBefore = await rollUpTicks(drain);
        const before = { service: treeTicks(service.pid), postgres: treeTicks(postgres) };
        for (const body of variant.bodies) await post(url, body);
        await drained(drain);
        const spent = { service: treeTicks(service.pid) - before.service, postgres: treeTicks(postgres) - before.postgres };
        const rollUp = rollUpSpent(rollBefore, await rollUpTicks(drain));
        if (round === 0) continue;
        const slot = (perEvent[variant.name] ??= { service: [], postgres: [], rollUp: [] });
        slot.service.push(µsPerEvent(spent.service));
        slot.postgres.push(µsPerEvent(spent.postgres));
        // NaN: a roll-up backend ended mid-round (its time is not attributable); left out.
        if (!Number.isNaN(rollUp)) slot.rollUp.push(µsPerEvent(rollUp));
      }
    }
  } finally {
    agent.destroy();
    await drain.end();
    await stopChild(service.child);
    await db.close();
  }
  const rows = variants.map(({ name }) => {
    const { service: s, postgres: p, rollUp: r } = perEvent[name]!;
    return [
      name,
      median(s).toFixed(2),
      median(p).toFixed(2),
      median(r).toFixed(2),
      (median(s) + median(p)).toFixed(2),
      s.map((v) => v.toFixed(1)).join(', '),
      p.map((v) => v.toFixed(1)).join(', '),
    ];
  });
  const mode = env.STORAGE_MODE ?? 'auto';
  console.log(
    `\nPOST /v1/events, ${BATCH.toLocaleString('en-US')}-event batches, ${batchesPerRound} a round, ${rounds} rounds, ` +
      `STORAGE_MODE=${mode}${reuse ? `, on ${reuse} as it was` : ''}: CPU µs per event (each round until the queue it made is rolled up), medians\n`,
  );
  console.log(
    table(['batch', 'service', 'PostgreSQL', 'of it roll-up', 'whole stack', 'service per round', 'PostgreSQL per round'], rows),
  );
  const [plain, full] = variants.map(({ name }) => perEvent[name]!);
  const extra = (part: 'service' | 'postgres' | 'rollUp') => median(full![part]) - median(plain![part]);
  console.log(
    `\nevery dimension and 3 properties cost ${extra('service').toFixed(2)} µs of the service's CPU and ` +
      `${extra('postgres').toFixed(2)} µs of PostgreSQL's per event (the roll-up ${extra('rollUp').toFixed(2)} of it): ` +
      `${(extra('service') + extra('postgres')).toFixed(2)} µs whole stack`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
