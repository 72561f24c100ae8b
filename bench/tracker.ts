/**
 * npm run bench:tracker — the CPU the collector adds to one tracked pageview (an event
 * sent without `user`), in this process: the client address, the bot check (isbot), the
 * user agent parsed (bowser), the country looked up (maxmind), the device class and the
 * visitor id (HMAC-SHA256), against what parsing and checking the same event costs
 * (CheckedEvent, which every /v1/events event pays). process.cpuUsage around each of
 * BENCH_TRACKER_ROUNDS rounds of BENCH_TRACKER_EVENTS events, medians printed; user
 * agents and addresses rotate over realistic sets so that no cache flatters the figure.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Collector } from '../src/tracker/collector.js';
import { clientAddress, parseTrustProxy } from '../src/tracker/address.js';
import { agentOf, enrich, isBot } from '../src/tracker/enrich.js';
import { visitorId } from '../src/tracker/visitor.js';
import { CheckedEvent } from '../src/v1/events/schemas.js';
import { median } from './load.js';

const rounds = Number(process.env.BENCH_TRACKER_ROUNDS ?? 7);
const perRound = Number(process.env.BENCH_TRACKER_EVENTS ?? 20_000);

const AGENTS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
];
const ADDRESSES = ['8.8.8.8', '193.0.6.139', '202.12.29.1', '2001:67c:2e8::1', '80.67.169.12', '196.216.2.1', '200.3.14.10'];
const EVENT = {
  kind: 'pageview',
  page: '/pricing?utm_source=newsletter',
  referrer: 'https://news.ycombinator.com/item?id=1',
  utm_source: 'newsletter',
  screen_width: 1440,
};
const salt = randomBytes(32);
const proxies = parseTrustProxy('127.0.0.1');

/** µs of CPU per event of `work`, the median of the rounds. */
function measure(work: (i: number) => unknown): number {
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.cpuUsage();
    for (let i = 0; i < perRound; i++) work(i);
    const used = process.cpuUsage(start);
    samples.push((used.user + used.system) / perRound);
  }
  return median(samples);
}

const parse = (i: number) => CheckedEvent.safeParse({ ...EVENT, page: `/p${i % 50}` });
const collect = (i: number) => {
  const ua = AGENTS[i % AGENTS.length]!;
  const address = clientAddress('127.0.0.1', ADDRESSES[i % ADDRESSES.length], proxies);
  if (isBot(ua)) throw new Error('not a bot');
  const agent = agentOf(ua);
  enrich({ referrer: 'news.ycombinator.com' }, 1440, agent, { address, userAgent: ua, country: true });
  return visitorId(salt, 'shop', address, ua);
};

// The route's path: the Collector (its cache of user agents) over a request-like object.
const collector = new Collector(null as never, { scriptPath: undefined, trustProxy: proxies, country: true }, () => {});
const contexts = ADDRESSES.flatMap((xff) =>
  AGENTS.map((ua) => {
    const headers: Record<string, string> = { 'user-agent': ua, 'x-forwarded-for': xff };
    return { socket: { remoteAddress: '127.0.0.1' }, headers } as unknown as IncomingMessage;
  }),
);
const routed = (i: number) => {
  const visit = collector.visit(contexts[i % contexts.length]!);
  collector.dimensions({ referrer: 'news.ycombinator.com' }, 1440, visit);
  return visitorId(salt, 'shop', visit.address, visit.userAgent);
};

measure(routed);
measure(parse); // warm-up, and the country database loaded
measure(collect);
const parsed = measure(parse);
const collected = measure(collect);
const cached = measure(routed);
const each = {
  'address + isbot': measure((i) => isBot(AGENTS[i % AGENTS.length]!) || clientAddress('127.0.0.1', ADDRESSES[i % 7], proxies)),
  'bowser': measure((i) => agentOf(AGENTS[i % AGENTS.length]!)),
  'country': measure((i) => enrich(undefined, undefined, {}, { address: ADDRESSES[i % 7]!, userAgent: '', country: true })),
  'visitor id': measure((i) => visitorId(salt, 'shop', ADDRESSES[i % 7]!, AGENTS[i % AGENTS.length]!)),
};
console.log(`CPU per event, median of ${rounds} rounds of ${perRound} (µs):`);
console.log(`  parse and check the event (every /v1/events event): ${parsed.toFixed(2)}`);
console.log(`  the collector's work for an event without user:     ${collected.toFixed(2)}`);
console.log(`  the same through the Collector, user agents cached:  ${cached.toFixed(2)}`);
for (const [name, us] of Object.entries(each)) console.log(`    ${name}: ${us.toFixed(2)}`);
