import { createSql, type Sql } from '../src/db/client.js';
import { refreshAggregates } from '../src/db/refresher.js';

/**
 * Data for the benchmark, generated inside PostgreSQL with generate_series (one
 * statement per call), so seeding measures the database, not the load generator.
 */

/** `events` click/impression events of `users` distinct users in [fromMs, toMs). */
export async function seedAnalytics(sql: Sql, fromMs: number, toMs: number, events: number, users: number): Promise<void> {
  await sql`
    insert into events (time, kind, user_id)
    select
      ${new Date(fromMs)}::timestamptz + (i::float8 / ${events}) * (${toMs - fromMs}::float8 * interval '1 millisecond'),
      case when i % 4 = 0 then 'click' else 'impression' end,
      'h' || (i % ${users})
    from generate_series(0, ${events - 1}) as i
  `;
}

/** Exactly `users` distinct users, each seen twice, on the GMT day `dayMs`. */
export async function seedDistinctUsers(sql: Sql, dayMs: number, users: number, prefix: string): Promise<void> {
  await sql`
    insert into events (time, kind, user_id)
    select ${new Date(dayMs)}::timestamptz + (i % 86400) * interval '1 second', 'collect', ${prefix} || (i % ${users})
    from generate_series(0, ${users * 2 - 1}) as i
  `;
}

/** The bench's sites and their shares of seedDay's events (unequal, as real sites are). */
export const SITES = [
  { site: 'default', share: 0.6 },
  { site: 'shop', share: 0.3 },
  { site: 'blog', share: 0.1 },
] as const;

/** What seedDay's dimensions hold: ~60 countries, 4 devices, 10 browsers and OS, ~200 referrer hosts. */
const COUNTRIES =
  'US DE IN GB FR BR CA JP NL ES IT PL AU SE MX ID TR KR CH BE AT RU UA AR CO ZA NG EG PK BD VN TH PH MY SG NZ IE DK NO FI PT CZ RO HU GR IL SA AE CL PE KE MA TW HK CN SK BG HR LT EE'.split(
    ' ',
  );
const BROWSERS = ['Chrome', 'Safari', 'Edge', 'Firefox', 'Samsung Internet', 'Opera', 'Brave', 'Vivaldi', 'UC Browser', 'Yandex'];
const OSES = ['Windows', 'iOS', 'Android', 'macOS', 'Linux', 'ChromeOS', 'iPadOS', 'Ubuntu', 'FreeBSD', 'HarmonyOS'];
const KNOWN_REFERRERS = [
  'google.com',
  'bing.com',
  'duckduckgo.com',
  't.co',
  'news.ycombinator.com',
  'reddit.com',
  'facebook.com',
  'linkedin.com',
  'github.com',
  'youtube.com',
  'instagram.com',
  'yandex.ru',
];
export const CAMPAIGNS = ['black-friday', 'spring-sale', 'launch-week', 'retargeting', 'webinar', 'weekly-digest'];
/** How many values seedDay's high-cardinality property (props.article) and referrer hosts take. */
export const ARTICLES = 200;
const REFERRER_HOSTS = 200;

const textArray = (values: readonly string[]): string => `array[${values.map((v) => `'${v}'`).join(', ')}]`;

/**
 * A day of mixed traffic (`events` events, spread evenly over the UTC day `dayMs`) on
 * three sites (SITES), with every standard dimension and 3 properties filled, generated
 * in statements of at most `chunk` events each (consecutive event numbers: a stretch of the
 * day; the same rows whatever the chunk), each its own transaction, as a writer's batches
 * are. With one transaction a day (about a minute each) beside a roller that rolls up
 * and folds meanwhile (bench/phases/volume.ts), dimensions_daily took 5.3 GB on disk after
 * 31 days of 1,000,000 events, against 2.8 GB when the roller ran after the seeding:
 * vacuum cannot remove what folds leave behind while a transaction older than it runs.
 * Deterministic per day: r(k) is a uniform draw in [0, 1) from a hash
 * of the event number (or of the user, for what belongs to a user) and k.
 *  - users: per site a pool of 2 × `events` × share; rank = pool × r², so a user's share
 *    falls as 1/√rank (Zipf-like) and users come back day after day;
 *  - per user (the same every day): country (60, log-uniform rank: US 17 %, DE 10 %, …,
 *    EE 0.2 %), device (desktop 55 %, mobile 38 %, tablet 6 %, tv 1 %), browser and os
 *    (10 each, log-uniform), props.plan (free 70 %, pro 23 %, team 7 %), props.ab.variant
 *    (a, b);
 *  - per event: kind (pageview 55 %, click 25 %, impression 15 %, signup 5 %), page (50,
 *    page views only), referrer (none 45 %, else ~200 hosts, log-uniform), utm_* on 12 %
 *    (4 sources and their medium, 6 campaigns, 2 contents, 20 terms on cpc), props.article
 *    on 60 % (200 values, log-uniform).
 */
export async function seedDay(sql: Sql, dayMs: number, events: number, chunk = 50_000): Promise<void> {
  for (let first = 0; first < events; first += chunk)
    await seedEvents(sql, dayMs, events, first, Math.min(events, first + chunk) - 1);
}

/** Events `first` to `last` (inclusive) of seedDay's day. */
async function seedEvents(sql: Sql, dayMs: number, events: number, first: number, last: number): Promise<void> {
  const daySeed = Math.floor(dayMs / 86_400_000) * 64;
  const ev = (k: number): string => `((hashint8extended(i, ${daySeed + k}) & 9007199254740991)::float8 / 9007199254740992)`;
  const us = (k: number): string => `((hashint8extended(u.rank, ${k}) & 9007199254740991)::float8 / 9007199254740992)`;
  /** A log-uniform rank in [1, n]: rank 1 ~ ln 2 / ln(n + 1) of the draws (Zipf-like). */
  const logRank = (r: string, n: number): string => `least(${n}, floor(exp(${r} * ln(${n + 1})))::int)`;
  const siteCase = SITES.map((s, i) => {
    const upTo = SITES.slice(0, i + 1).reduce((a, x) => a + x.share, 0);
    return `when ${ev(0)} < ${upTo} then ${i + 1}`;
  }).join(' ');
  const sites = textArray(SITES.map((s) => s.site));
  const pools = `array[${SITES.map((s) => Math.max(100, Math.round(2 * events * s.share))).join(', ')}]`;
  await sql.unsafe(`
    insert into events (site, time, kind, user_id, page, referrer, utm_source, utm_medium, utm_campaign, utm_content,
                        utm_term, country, device, browser, os, props)
    select
      (${sites})[u.s],
      '${new Date(dayMs).toISOString()}'::timestamptz + (i::float8 / ${events}) * interval '1 day',
      e.kind,
      'u' || u.rank,
      case when e.kind = 'pageview' then '/page/' || (${logRank(ev(2), 50)} - 1) else '' end,
      case when ${ev(3)} < 0.45 then null
           else coalesce((${textArray(KNOWN_REFERRERS)})[e.ref], 'blog' || e.ref || '.example.org') end,
      case when e.utm then (array['newsletter', 'twitter', 'google', 'facebook'])[e.src] end,
      case when e.utm then (array['email', 'social', 'cpc', 'social'])[e.src] end,
      case when e.utm then (${textArray(CAMPAIGNS)})[${logRank(ev(6), CAMPAIGNS.length)}] end,
      case when e.utm then (array['banner', 'text'])[1 + (${ev(7)} < 0.5)::int] end,
      case when e.utm and e.src = 3 then 'term-' || ${logRank(ev(8), 20)} end,
      (${textArray(COUNTRIES)})[${logRank(us(1), COUNTRIES.length)}],
      case when ${us(2)} < 0.55 then 'desktop' when ${us(2)} < 0.93 then 'mobile' when ${us(2)} < 0.99 then 'tablet' else 'tv' end,
      (${textArray(BROWSERS)})[${logRank(us(3), BROWSERS.length)}],
      (${textArray(OSES)})[${logRank(us(4), OSES.length)}],
      jsonb_build_object(
        'plan', case when ${us(5)} < 0.7 then 'free' when ${us(5)} < 0.93 then 'pro' else 'team' end,
        'ab.variant', case when ${us(6)} < 0.5 then 'a' else 'b' end
      ) || case when ${ev(9)} < 0.6 then jsonb_build_object('article', 'article-' || ${logRank(ev(10), ARTICLES)}) else '{}' end
    from generate_series(${first}, ${last}) as i
    cross join lateral (
      select s, floor((${pools})[s] * ${ev(1)} ^ 2)::int8 as rank
      from (select case ${siteCase} else ${SITES.length} end as s) x
    ) u
    cross join lateral (
      select
        case when ${ev(11)} < 0.55 then 'pageview' when ${ev(11)} < 0.8 then 'click' when ${ev(11)} < 0.95 then 'impression'
             else 'signup' end as kind,
        ${logRank(ev(4), REFERRER_HOSTS)} as ref,
        ${ev(5)} < 0.12 as utm,
        1 + floor(${ev(12)} * 4)::int as src
    ) e
  `);
}

/**
 * Materializes every aggregate now (timescaledb mode; postgres mode's tables are always
 * current), as the service's refresher would within a tick, taking turns with it. Reads
 * are exact either way: this makes them read materialized rows, as in steady state.
 */
export async function refreshAll(databaseUrl: string): Promise<void> {
  const sql = createSql(databaseUrl, { max: 1, applicationName: 'headcount-bench' });
  try {
    const [row]: [{ storage_mode: string }?] = await sql`select storage_mode from headcount_settings`;
    if (row?.storage_mode !== 'timescaledb') return;
    while (!(await refreshAggregates(sql)).ran) await new Promise((r) => setTimeout(r, 100));
  } finally {
    await sql.end();
  }
}
