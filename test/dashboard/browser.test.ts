import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS } from '../../src/time.js';
import { findChromium, launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, first, type TestDatabase } from '../helpers/db.js';
import { prng } from '../helpers/events.js';
import { createKey } from '../../src/v1/auth/keys.js';
import { type Running, request, startServer } from '../helpers/server.js';
import { TcpProxy } from '../helpers/proxy.js';
import { isoDate, today } from '../helpers/time.js';

const chromium = await findChromium();
const missing = 'missing' in chromium ? chromium.missing : undefined;
if (missing) console.log(`dashboard browser test: skipped, ${missing}`);

/** Where the screenshot goes: DASHBOARD_SCREENSHOT=docs/dashboard.png refreshes the README's. */
const SCREENSHOT = path.resolve(process.env.DASHBOARD_SCREENSHOT ?? 'test-results/dashboard.png');

interface Stats {
  meta: { approximate: boolean; timezone: string };
  data: { bucket: string; kind?: string; page?: string; users: number; events: number }[];
}

/**
 * Known events: `users` distinct users within the last 6 days (inside "last 7 days" in
 * any zone), a daily rhythm for the screenshot, and five users whose only event is at
 * 20:00 UTC two days ago: 01:30 the next day in Asia/Kolkata.
 */
function knownEvents(): { events: object[]; users: number } {
  const rand = prng(12);
  const now = Date.now();
  const pages = ['/', '/pricing', '/docs', '/blog/counting-users', '/about'];
  const events: object[] = [];
  const users = new Set<string>();
  for (let i = 0; i < 2400; i++) {
    const ageMs = Math.floor(rand() * 6 * DAY_MS * 0.98) + 60_000;
    // Busier in the (UTC) afternoon: a visible daily rhythm.
    if (rand() < 0.5 * Math.abs(Math.sin((((now - ageMs) % DAY_MS) / DAY_MS) * Math.PI))) continue;
    const user = `visitor-${Math.floor(rand() * 420)}`;
    users.add(user);
    const kind = rand() < 0.72 ? 'pageview' : rand() < 0.85 ? 'click' : 'signup';
    events.push({ user, kind, page: pages[Math.floor(rand() * rand() * pages.length)], time: now - ageMs });
  }
  const lateEvening = today() - 2 * DAY_MS + 20 * HOUR_MS;
  for (let i = 0; i < 5; i++) {
    users.add(`late-${i}`);
    events.push({ user: `late-${i}`, kind: 'signup', page: '/pricing', time: lateEvening });
  }
  return { events, users: users.size };
}

const digits = (text: string | null): number => Number((text ?? '').replace(/\D/g, ''));

/** TRACKER_SCRIPT_PATH of the test's service. */
const SCRIPT_PATH = '/js/hc.js';

/**
 * Visits of the site "blog", made by hand (gaps of 30 minutes or more cut a visit), on
 * the day 3 days ago (in the last 7 days, UTC) and 10 days ago (the previous 7 days):
 *
 *   anna  10:00 pageview /, 10:10 pageview /pricing, 10:20 signup /pricing   1 visit, 1,200 s, not a bounce
 *   bob   11:00 pageview /blog                                              1 visit, 0 s, a bounce
 *   bob   13:00 pageview /, 13:05 pageview /about                           1 visit, 300 s
 *   carl  09:00 pageview /pricing                                           1 visit, 0 s, a bounce
 *   carl  09:45 pageview /pricing, 09:50 pageview /docs (45 min later)      1 visit, 300 s
 *
 * 3 users, 9 events, 5 visits, 2 bounces (40 %); durations 0, 0, 300, 300, 1,200 s: mean
 * 360 s (6 min), median 300 s (5 min). Entry pages: / 2 visits (0 % bounce), /pricing 2
 * (50 %), /blog 1 (100 %). Exit pages: /pricing 2 (50 %), /blog 1 (100 %), /about 1, /docs 1.
 * The previous period: dora 10:00 pageview / (a bounce); emil 12:00 pageview /, 12:02
 * signup / (120 s): 2 users, 2 visits, 50 %, mean 60 s.
 */
function blogEvents(): object[] {
  const day = today() - 3 * DAY_MS;
  const before = today() - 10 * DAY_MS;
  const at = (base: number, hhmm: string): number => base + Number(hhmm.slice(0, 2)) * HOUR_MS + Number(hhmm.slice(3)) * 60_000;
  const e = (user: string, base: number, hhmm: string, kind: string, page: string) => ({
    site: 'blog',
    user,
    kind,
    page,
    time: at(base, hhmm),
  });
  return [
    e('anna', day, '10:00', 'pageview', '/'),
    e('anna', day, '10:10', 'pageview', '/pricing'),
    e('anna', day, '10:20', 'signup', '/pricing'),
    e('bob', day, '11:00', 'pageview', '/blog'),
    e('bob', day, '13:00', 'pageview', '/'),
    e('bob', day, '13:05', 'pageview', '/about'),
    e('carl', day, '09:00', 'pageview', '/pricing'),
    e('carl', day, '09:45', 'pageview', '/pricing'),
    e('carl', day, '09:50', 'pageview', '/docs'),
    e('dora', before, '10:00', 'pageview', '/'),
    e('emil', before, '12:00', 'pageview', '/'),
    e('emil', before, '12:02', 'signup', '/'),
  ];
}

/** The dimensions of the shop's events, as stored in their own columns. */
type ShopDimension = 'referrer' | 'utm_campaign' | 'utm_source' | 'utm_medium' | 'country' | 'device' | 'browser' | 'os';
interface ShopEvent {
  user: string;
  timeMs: number;
  kind: string;
  page: string;
  dims: Record<ShopDimension, string | null>;
  plan: string | null;
}

/**
 * Events of the site "shop" with every dimension: `current` from 6 days ago at midnight
 * UTC to now (the "last 7 days" in UTC), `previous` in the 7 days before those (the
 * previous period), where no event has the campaign "launch" and fewer users come.
 */
function shopEvents(): { current: ShopEvent[]; previous: ShopEvent[] } {
  const rand = prng(19);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(rand() * values.length)]!;
  const make = (timeMs: number, users: number, campaigns: readonly (string | null)[]): ShopEvent => {
    const campaign = pick(campaigns);
    return {
      user: `shopper-${Math.floor(rand() * users)}`,
      timeMs,
      kind: pick(['pageview', 'pageview', 'signup']),
      page: pick(['/', '/cart', '/checkout']),
      dims: {
        referrer: pick(['news.example', 'search.example', 'social.example', null, null]),
        utm_campaign: campaign,
        utm_source: campaign ? pick(['newsletter', 'ads']) : null,
        utm_medium: campaign ? pick(['email', 'cpc']) : null,
        country: pick(['DE', 'DE', 'FR', 'US', 'IN', null]),
        device: pick(['desktop', 'mobile', 'tablet']),
        browser: pick(['Firefox', 'Chrome', 'Safari']),
        os: pick(['Linux', 'Windows', 'macOS', 'iOS', 'Android']),
      },
      plan: pick(['free', 'free', 'pro', null]),
    };
  };
  const from = today() - 6 * DAY_MS;
  const current = Array.from({ length: 700 }, () =>
    make(from + Math.floor(rand() * (Date.now() - 60_000 - from)), 90, ['launch', 'winter', null, null]),
  );
  const previous = Array.from({ length: 300 }, () =>
    make(from - 7 * DAY_MS + Math.floor(rand() * (7 * DAY_MS - 1)), 60, ['winter', null, null]),
  );
  // Four shoppers on the site now, from Germany with no referrer: the current visitors of the screenshot.
  for (let i = 0; i < 4; i++) {
    const e = make(Date.now() - 90_000, 90, [null]);
    current.push({ ...e, dims: { ...e.dims, country: 'DE', referrer: null } });
  }
  return { current, previous };
}

/** The body of POST /v1/events that stores them: dimensions as fields, the plan as a property. */
const shopBody = (events: ShopEvent[]): string =>
  JSON.stringify({
    events: events.map((e) => ({
      site: 'shop',
      user: e.user,
      kind: e.kind,
      page: e.page,
      time: e.timeMs,
      ...e.dims,
      ...(e.plan ? { props: { plan: e.plan } } : {}),
    })),
  });

/** A dimension's value in a shop event (kind, page, the columns, props.plan). */
function shopValue(e: ShopEvent, dimension: string): string | null {
  if (dimension === 'kind') return e.kind;
  if (dimension === 'page') return e.page;
  if (dimension === 'props.plan') return e.plan;
  return e.dims[dimension as ShopDimension];
}

/** Exact counts from the events: `{filter, users, events}` per value of `dimension`, by filter. */
function exactRows(events: ShopEvent[], dimension: string): { filter: string; users: number; events: number }[] {
  const groups = new Map<string, { users: Set<string>; events: number }>();
  for (const e of events) {
    const filter = `${dimension}==${shopValue(e, dimension) ?? ''}`;
    const g = groups.get(filter) ?? { users: new Set(), events: 0 };
    g.users.add(e.user);
    g.events++;
    groups.set(filter, g);
  }
  return [...groups]
    .map(([filter, g]) => ({ filter, users: g.users.size, events: g.events }))
    .sort((a, b) => a.filter.localeCompare(b.filter));
}

const exactTotal = (events: ShopEvent[]): { users: number; events: number } => ({
  users: new Set(events.map((e) => e.user)).size,
  events: events.length,
});

/** The figure beside a total, written out independently of the page's code. */
function expectedChange(current: number, previous: number): string {
  if (previous === 0) return current === 0 ? '±0 %' : 'new';
  const percent = Math.round((100 * (current - previous)) / previous);
  return percent > 0 ? `+${percent} %` : percent < 0 ? `−${-percent} %` : '±0 %';
}

describe.skipIf(missing !== undefined)(`the dashboard in Chromium${missing ? ` (${missing})` : ''}`, () => {
  let db: TestDatabase;
  let proxy: TcpProxy;
  let server: Running;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let seededUsers: number;
  let adminKey: string;
  let readKey: string;
  let shopKey: string;
  let blogKey: string;
  let shop: { current: ShopEvent[]; previous: ShopEvent[] };
  /** The most /v1/stats requests the page had open at once, and their statuses. */
  let statsOpen = 0;
  let statsOpenMax = 0;
  const statsStatuses: number[] = [];
  /** The /v1/stats requests answered 400. */
  const statsRefusals: URLSearchParams[] = [];
  const asAdmin = () => ({ Authorization: `Bearer ${adminKey}` });
  const agent = new http.Agent({ keepAlive: true });
  /** Paths of every request the page made. */
  const requested: string[] = [];
  /** Console errors and uncaught exceptions of the page (CSP violations among them). */
  const pageErrors: string[] = [];

  const api = async (pathAndQuery: string): Promise<Stats> => {
    const res = await request(agent, server.port, 'GET', pathAndQuery, undefined, asAdmin());
    expect(res.status).toBe(200);
    return JSON.parse(res.body) as Stats;
  };
  /** The /v1/stats requests of the page's last complete load, by what they ask. */
  const lastStatsUrls = (): Record<'series' | 'total' | 'kind' | 'page', string> => {
    const stats = requested.filter((p) => p.startsWith('/v1/stats?'));
    const find = (test: (q: URLSearchParams) => boolean): string => {
      const found = stats.findLast((p) => test(new URL(p, 'http://x').searchParams));
      if (!found) throw new Error(`no such request among ${stats.join(', ')}`);
      return found;
    };
    return {
      series: find((q) => q.has('granularity') && q.get('granularity') !== 'total'),
      total: find((q) => q.get('granularity') === 'total' && !q.has('group_by') && !q.has('metrics')),
      kind: find((q) => q.get('group_by') === 'kind'),
      page: find((q) => q.get('group_by') === 'page'),
    };
  };
  const loaded = async (): Promise<void> => {
    await page.waitForSelector('main[aria-busy="false"]');
  };
  const seriesRows = (): Promise<{ bucket: string; users: number; events: number }[]> =>
    page.$$eval('#series tbody tr', (trs) =>
      trs.map((tr) => ({
        bucket: (tr as HTMLElement).dataset.bucket ?? '',
        users: Number(tr.children[1]!.textContent.replace(/\D/g, '')),
        events: Number(tr.children[2]!.textContent.replace(/\D/g, '')),
      })),
    );
  const tableRows = (id: string): Promise<{ name: string; users: number; events: number }[]> =>
    page.$$eval(`#${id} tbody tr`, (trs) =>
      trs.map((tr) => ({
        name: tr.children[0]!.textContent ?? '',
        users: Number(tr.children[1]!.textContent.replace(/\D/g, '')),
        events: Number(tr.children[2]!.textContent.replace(/\D/g, '')),
      })),
    );

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    proxy = await TcpProxy.to(db.url);
    await proxy.resume();
    // /v1 needs keys (the default): the page asks for a read key; the test seeds with an admin key.
    // The read rate limit (40 at once, then 10 a second per key) is not what these tests
    // check, and they change the page faster than a person: in a full run one of them
    // waited 30 s for a panel whose requests kept answering 429.
    // The tracker also at a path of its own: the embed panel's line must name it.
    server = await startServer({
      DATABASE_URL: proxy.via(db.url),
      RATE_LIMIT_READ_PER_SECOND: '1000',
      RATE_LIMIT_READ_BURST: '10000',
      TRACKER_SCRIPT_PATH: SCRIPT_PATH,
    });
    adminKey = (await createKey(db.sql, { scope: 'admin', site: null, name: 'test' })).key;
    readKey = (await createKey(db.sql, { scope: 'read', site: 'default', name: 'dashboard' })).key;
    shopKey = (await createKey(db.sql, { scope: 'read', site: 'shop', name: 'shop dashboard' })).key;
    blogKey = (await createKey(db.sql, { scope: 'read', site: 'blog', name: 'blog dashboard' })).key;
    shop = shopEvents();
    const stored = await request(
      agent,
      server.port,
      'POST',
      '/v1/events',
      shopBody([...shop.current, ...shop.previous]),
      asAdmin(),
    );
    expect(JSON.parse(stored.body)).toMatchObject({ accepted: shop.current.length + shop.previous.length, rejected: [] });
    const blog = blogEvents();
    const blogStored = await request(agent, server.port, 'POST', '/v1/events', JSON.stringify({ events: blog }), asAdmin());
    expect(JSON.parse(blogStored.body)).toMatchObject({ accepted: blog.length, rejected: [] });
    const seed = knownEvents();
    seededUsers = seed.users;
    const res = await request(agent, server.port, 'POST', '/v1/events', JSON.stringify({ events: seed.events }), asAdmin());
    expect(JSON.parse(res.body)).toMatchObject({ accepted: seed.events.length, rejected: [] });

    browser = await launchChromium((chromium as { path: string }).path);
    // The browser's zone is the page's default.
    context = await browser.newContext({
      timezoneId: 'America/New_York',
      locale: 'en-US',
      viewport: { width: 1200, height: 900 },
    });
    page = await context.newPage();
    page.on('request', (req) => requested.push(new URL(req.url()).pathname + new URL(req.url()).search));
    const isStats = (url: string): boolean => new URL(url).pathname === '/v1/stats';
    page.on('request', (req) => {
      if (isStats(req.url())) statsOpenMax = Math.max(statsOpenMax, ++statsOpen);
    });
    const ended = (req: { url: () => string }): void => {
      if (isStats(req.url())) statsOpen--;
    };
    page.on('requestfinished', ended);
    page.on('requestfailed', ended);
    page.on('response', (res) => {
      if (isStats(res.url())) statsStatuses.push(res.status());
      if (isStats(res.url()) && res.status() === 400) statsRefusals.push(new URL(res.url()).searchParams);
    });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      // A 503 answer is logged by Chromium itself; the page shows it (see the outage test).
      // A 400 is the refusal of a previous period past the sketch retention (checked in
      // the twelve months test: statsRefusals); a 429 the read rate limit (10 a second) when
      // the tests change the page faster than a person would: the page retries after Retry-After;
      // a 403 a read key's attempt to create an ingest key (the tracking code test).
      if (msg.type() === 'error' && !/status of (503|401|400|403|429)/.test(msg.text())) pageErrors.push(msg.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await proxy?.resume();
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await proxy?.close();
    agent.destroy();
    await db?.drop();
  });

  it('prints its URL at start and opens in the browser’s time zone, reading /v1/stats (and the site’s properties) only', async () => {
    expect(server.output()).toContain(`dashboard: http://127.0.0.1:${server.port}/`);
    await page.goto(`http://127.0.0.1:${server.port}/?range=7d&poll=1`);
    // No key yet: the page asks for a read key, once, and keeps it in the browser's storage.
    await page.waitForSelector('#key-form input', { state: 'visible' });
    expect(await page.textContent('#error')).toContain('401');
    await page.fill('#key-form input', readKey);
    await page.press('#key-form input', 'Enter');
    await loaded();
    // The current visitors stopped at the 401 (no key) and start again with the key.
    await page.waitForSelector('#current-visitors[data-users]');
    expect(await page.evaluate(() => localStorage.getItem('headcount.readKey'))).toBe(readKey);
    expect(requested.some((p) => p.includes(readKey))).toBe(false);
    expect(page.url()).not.toContain(readKey);
    expect(await page.inputValue('#tz')).toBe('America/New_York');
    expect(new URL(lastStatsUrls().total, 'http://x').searchParams.get('timezone')).toBe('America/New_York');
    const paths = new Set(requested.map((p) => p.split('?')[0]));
    // Besides the stats, the site's declared properties (GET /v1/sites/default), once.
    expect(requested.filter((p) => p.startsWith('/v1/sites'))).toEqual(['/v1/sites/default']);
    expect(
      [...paths].filter(
        (p) => p !== '/' && p !== '/v1/stats' && p !== '/v1/sites/default' && !/^\/assets\/app-\w+\.(js|css)$/.test(p!),
      ),
    ).toEqual([]);
  });

  it('draws one point per day and shows the range’s distinct users as /v1/stats total answers them', async () => {
    await page.selectOption('#tz', 'UTC');
    await page.waitForFunction(() => document.querySelector('#series tbody tr')?.getAttribute('data-bucket')?.endsWith('+00:00'));
    await loaded();
    const urls = lastStatsUrls();
    const series = await api(urls.series);
    expect(series.data).toHaveLength(7);
    expect(await page.getAttribute('#chart-users', 'data-points')).toBe('7');
    expect(await page.getAttribute('#chart-events', 'data-points')).toBe('7');
    expect(await page.locator('#chart-users canvas').count()).toBe(1);
    expect(await seriesRows()).toEqual(series.data.map(({ bucket, users, events }) => ({ bucket, users, events })));

    const total = await api(urls.total);
    const [sum] = total.data;
    expect(sum!.users).toBe(seededUsers);
    expect(digits(await page.textContent('#total-users'))).toBe(sum!.users);
    expect(digits(await page.textContent('#total-events'))).toBe(sum!.events);
    // The total is a union: less than the sum of the days' distinct users.
    expect(sum!.users).toBeLessThan(series.data.reduce((n, r) => n + r.users, 0));
    expect(await page.textContent('#users-note')).toMatch(total.meta.approximate ? /±0\.81 %/ : /Exact.*±0\.81 %/);

    const kinds = await api(urls.kind);
    expect(await tableRows('kinds')).toEqual(kinds.data.map((r) => ({ name: r.kind, users: r.users, events: r.events })));
    const pages = await api(urls.page);
    expect(pages.data.length).toBeGreaterThan(1);
    expect(await tableRows('pages')).toEqual(
      pages.data.map((r) => ({ name: r.page || '(none)', users: r.users, events: r.events })),
    );
  });

  it('moves the day boundaries to the chosen zone’s midnights', async () => {
    const utc = await seriesRows();
    expect(utc.map((r) => r.bucket.slice(10))).toEqual(Array(7).fill('T00:00:00+00:00'));
    await page.selectOption('#tz', 'Asia/Kolkata');
    await page.waitForFunction(() => document.querySelector('#series tbody tr')?.getAttribute('data-bucket')?.endsWith('+05:30'));
    await loaded();
    const kolkata = await seriesRows();
    expect(kolkata.map((r) => r.bucket.slice(10))).toEqual(Array(7).fill('T00:00:00+05:30'));
    expect(kolkata).toEqual(
      (await api(lastStatsUrls().series)).data.map(({ bucket, users, events }) => ({ bucket, users, events })),
    );
    // Kolkata's midnights are 18:30 UTC: its days start 5.5 hours before UTC's (or 18.5 after).
    const shift = (Date.parse(kolkata[0]!.bucket) - Date.parse(utc[0]!.bucket) + 7 * DAY_MS) % DAY_MS;
    expect(shift).toBe(18.5 * HOUR_MS);
    // The five users of 20:00 UTC two days ago, among others, move to the next local day.
    expect(kolkata.map((r) => r.users)).not.toEqual(utc.map((r) => r.users));
    expect(await page.getAttribute('#chart-users', 'data-points')).toBe('7');
    expect(digits(await page.textContent('#total-users'))).toBe(seededUsers);
  });

  it('updates the current hour while the page is open', async () => {
    await page.selectOption('#range', '24h');
    await page.waitForFunction(() => document.querySelector('#chart-users')?.getAttribute('data-points') === '24');
    await loaded();
    const before = digits(await page.textContent('#total-users'));
    const lastHour = (await seriesRows()).at(-1)!;
    const res = await request(
      agent,
      server.port,
      'POST',
      '/v1/events',
      JSON.stringify({ events: [{ user: 'newcomer', kind: 'pageview', page: '/' }] }),
      asAdmin(),
    );
    expect(res.status).toBe(200);
    await expect.poll(async () => digits(await page.textContent('#total-users')), { timeout: 10_000 }).toBe(before + 1);
    expect((await seriesRows()).at(-1)!.users).toBe(lastHour.users + 1);
  });

  it('works by keyboard and fits a 375 px wide screen', async () => {
    await page.setViewportSize({ width: 375, height: 800 });
    await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
    // From where the focus was, on round the page (every panel row has a button) to the top.
    for (let i = 0; i < 150 && (await page.evaluate(() => document.activeElement?.id)) !== 'range'; i++)
      await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('range');
    await page.keyboard.press('ArrowDown'); // last 24 hours -> last 7 days
    await page.waitForFunction(() => document.querySelector('#chart-users')?.getAttribute('data-points') === '7');
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.setViewportSize({ width: 1200, height: 900 });
  });

  it('says so when a site has no events in the range', async () => {
    // A read key is for one site: an admin key (every site) reads the empty one, which
    // exists (an admin key gets 404 unknown_site for a site that does not).
    const made = await request(agent, server.port, 'POST', '/v1/sites', JSON.stringify({ site: 'nobody' }), {
      ...asAdmin(),
      'Content-Type': 'application/json',
    });
    expect(made.status).toBe(201);
    await page.evaluate((key) => localStorage.setItem('headcount.readKey', key), adminKey);
    await page.fill('#site', 'nobody');
    await page.press('#site', 'Enter');
    await page.waitForFunction(() => !document.querySelector('#empty')?.hasAttribute('hidden'));
    expect(await page.textContent('#empty')).toContain('No events for site nobody');
    expect(digits(await page.textContent('#total-users'))).toBe(0);
    // Nothing before either: no change (not "no previous period").
    expect(await page.textContent('#users-change strong')).toBe('±0 %');
    await page.fill('#site', '');
    await page.press('#site', 'Enter');
    await page.waitForFunction(() => document.querySelector('#empty')?.hasAttribute('hidden'));
    await page.evaluate((key) => localStorage.setItem('headcount.readKey', key), readKey);
  });

  it('shows that the database is down instead of a chart, and recovers by itself', async () => {
    await loaded();
    await proxy.pause();
    await page.waitForSelector('#error:not([hidden])', { timeout: 15_000 });
    expect(await page.textContent('#error')).toContain('The database is not answering');
    expect(await page.isHidden('#results')).toBe(true);
    await proxy.resume();
    await page.waitForSelector('#results:not([hidden])', { timeout: 15_000 });
    expect(await page.isHidden('#error')).toBe(true);
    expect(digits(await page.textContent('#total-users'))).toBe(seededUsers + 1);
    expect(pageErrors).toEqual([]);
  });

  describe('with dimensions (the site shop)', () => {
    /** A panel's rows: the filter a click adds, users and events; by filter. */
    const panelRows = (id: string): Promise<{ filter: string; users: number; events: number }[]> =>
      page.$$eval(`#${id} tbody tr`, (trs) =>
        trs
          .map((tr) => ({
            filter: (tr as HTMLElement).dataset.filter ?? `(no filter: ${tr.textContent})`,
            users: Number(tr.children[1]?.textContent.replace(/\D/g, '')),
            events: Number(tr.children[2]?.textContent.replace(/\D/g, '')),
          }))
          .sort((a, b) => a.filter.localeCompare(b.filter)),
      );
    const chips = (): Promise<{ filter: string; text: string }[]> =>
      page.$$eval('#chips li', (lis) =>
        lis.map((li) => ({ filter: (li as HTMLElement).dataset.filter ?? '', text: li.querySelector('span')!.textContent })),
      );
    const urlFilters = (): string[] => new URL(page.url()).searchParams.getAll('filter');
    /** Every panel, the totals and their figures equal the exact counts of `events` (and `previous`). */
    const expectExact = async (events: ShopEvent[], previous: ShopEvent[]): Promise<void> => {
      const panels = [
        ['sources', 'referrer'],
        ['campaigns', 'utm_campaign'],
        ['countries', 'country'],
        ['devices', 'device'],
        ['browsers', 'browser'],
        ['oses', 'os'],
        ['property', 'props.plan'],
        ['kinds', 'kind'],
        ['pages', 'page'],
      ] as const;
      for (const [id, dimension] of panels) expect(await panelRows(id), id).toEqual(exactRows(events, dimension));
      const now = exactTotal(events);
      const before = exactTotal(previous);
      expect(digits(await page.textContent('#total-users'))).toBe(now.users);
      expect(digits(await page.textContent('#total-events'))).toBe(now.events);
      expect(await page.textContent('#users-change strong')).toBe(expectedChange(now.users, before.users));
      expect(await page.textContent('#events-change strong')).toBe(expectedChange(now.events, before.events));
      expect(await page.getAttribute('#users-change', 'data-previous')).toBe(String(before.users));
      // The chart applies the filters too: its days' events add up to the total.
      expect((await seriesRows()).reduce((n, r) => n + r.events, 0)).toBe(now.events);
    };

    it('shows every panel with the exact counts of the stored events, and each total against the previous period', async () => {
      if (!page.url().startsWith(`http://127.0.0.1:${server.port}/`)) await page.goto(`http://127.0.0.1:${server.port}/`);
      await page.evaluate((key) => localStorage.setItem('headcount.readKey', key), shopKey);
      statsOpenMax = 0;
      statsStatuses.length = 0;
      const mark = requested.length;
      await page.goto(`http://127.0.0.1:${server.port}/?site=shop&range=7d&tz=UTC&prop=plan`);
      await loaded();
      expect(await page.inputValue('#prop')).toBe('plan');
      expect(await chips()).toEqual([]);
      // Small groups are exact (under 1,280 users each): the page's numbers are the counts.
      await expectExact(shop.current, shop.previous);
      expect(exactTotal(shop.current).users).toBeGreaterThan(exactTotal(shop.previous).users);
      expect(await page.textContent('#users-change')).toMatch(/^\+\d+ % compared to the previous period \(\d+\)$/);
      // Fourteen requests (the series, the totals of users and events and of visits, eleven
      // panels) and the current visitors', at most four at once (what the service runs per
      // key), none refused.
      // (Of site shop: the page left, of the default site, may have read once more just before.)
      const stats = requested.slice(mark).filter((p) => p.startsWith('/v1/stats?') && p.includes('site=shop'));
      expect(stats.filter((p) => !p.includes('period=5m'))).toHaveLength(14);
      expect(stats.filter((p) => p.includes('period=5m'))).toHaveLength(1);
      expect(statsOpenMax).toBeGreaterThan(1);
      expect(statsOpenMax).toBeLessThanOrEqual(4);
      expect(statsStatuses.filter((status) => status === 429 || status === 503)).toEqual([]);
    });

    it('adds a filter chip for a clicked row, and every panel, the totals and the chart apply it', async () => {
      // A click anywhere on the row (here its users cell).
      await page.click('#countries tr[data-filter="country==DE"] td');
      await page.waitForSelector('#chips li[data-filter="country==DE"]');
      await loaded();
      expect(await chips()).toEqual([{ filter: 'country==DE', text: 'Country is DE' }]);
      expect(urlFilters()).toEqual(['country==DE']);
      const de = (e: ShopEvent): boolean => e.dims.country === 'DE';
      await expectExact(shop.current.filter(de), shop.previous.filter(de));
      expect(requested.findLast((p) => p.includes('group_by=device'))).toContain(`filter=${encodeURIComponent('country==DE')}`);

      // By keyboard: the "(none)" row of the sources stands for "no referrer" (referrer==).
      await page.focus('#sources tr[data-filter="referrer=="] button');
      expect(await page.textContent('#sources tr[data-filter="referrer=="] button')).toBe('(none)');
      await page.keyboard.press('Enter');
      await page.waitForSelector('#chips li[data-filter="referrer=="]');
      await loaded();
      // The focus moved to the new chip's remove button.
      expect(await page.evaluate(() => document.activeElement?.closest('li')?.dataset.filter)).toBe('referrer==');
      expect(await chips()).toEqual([
        { filter: 'country==DE', text: 'Country is DE' },
        { filter: 'referrer==', text: 'Referrer is (none)' },
      ]);
      const deDirect = (e: ShopEvent): boolean => de(e) && e.dims.referrer === null;
      await expectExact(shop.current.filter(deDirect), shop.previous.filter(deDirect));
      // Chips and panels fit a phone's width.
      // (Polled: on a loaded machine the page is still laying out the new width when asked.)
      await page.setViewportSize({ width: 375, height: 800 });
      await expect
        .poll(() => page.evaluate(() => document.documentElement.scrollWidth), { timeout: 5000 })
        .toBeLessThanOrEqual(375);
      await page.setViewportSize({ width: 1200, height: 900 });
      mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    });

    it('keeps the filters, the property and the campaign parameter in the URL: a reload restores them', async () => {
      // Another UTM parameter: its panel alone is read again (one request).
      const mark = requested.length;
      await page.selectOption('#utm', 'utm_source');
      await page.waitForFunction(() =>
        document.querySelector('#campaigns tbody tr')?.getAttribute('data-filter')?.startsWith('utm_source=='),
      );
      expect(requested.slice(mark).filter((p) => p.startsWith('/v1/stats?'))).toHaveLength(1);
      expect(new URL(page.url()).searchParams.get('utm')).toBe('utm_source');
      await page.reload();
      await loaded();
      expect(urlFilters()).toEqual(['country==DE', 'referrer==']);
      expect(await chips()).toEqual([
        { filter: 'country==DE', text: 'Country is DE' },
        { filter: 'referrer==', text: 'Referrer is (none)' },
      ]);
      expect(await page.inputValue('#prop')).toBe('plan');
      expect(await page.inputValue('#utm')).toBe('utm_source');
      const deDirect = (e: ShopEvent): boolean => e.dims.country === 'DE' && e.dims.referrer === null;
      expect(await panelRows('campaigns')).toEqual(exactRows(shop.current.filter(deDirect), 'utm_source'));
      expect(digits(await page.textContent('#total-users'))).toBe(exactTotal(shop.current.filter(deDirect)).users);

      // Removing a chip (its button) removes its filter from the requests and the URL.
      await page.click('#chips li[data-filter="country==DE"] button');
      await page.waitForFunction(() => document.querySelectorAll('#chips li').length === 1);
      await loaded();
      expect(urlFilters()).toEqual(['referrer==']);
      const direct = (e: ShopEvent): boolean => e.dims.referrer === null;
      expect(digits(await page.textContent('#total-users'))).toBe(exactTotal(shop.current.filter(direct)).users);
      expect(await panelRows('countries')).toEqual(exactRows(shop.current.filter(direct), 'country'));
    });

    it('opens a shared link with its filters, and says "new" where the previous period had none', async () => {
      const link = new URLSearchParams([
        ['site', 'shop'],
        ['range', '7d'],
        ['tz', 'UTC'],
        ['filter', 'utm_campaign==launch'],
        ['filter', 'props.plan==pro|free'],
      ]);
      const mark = requested.length;
      await page.goto(`http://127.0.0.1:${server.port}/?${link.toString()}`);
      await loaded();
      expect(await chips()).toEqual([
        { filter: 'utm_campaign==launch', text: 'Campaign is launch' },
        { filter: 'props.plan==pro|free', text: 'Property plan is pro or free' },
      ]);
      // No property chosen: the panel says how to choose one, and asks nothing.
      expect(await page.inputValue('#prop')).toBe('');
      expect(await page.textContent('#property tbody')).toContain('Name a property');
      expect(requested.slice(mark).filter((p) => p.includes('group_by=props.'))).toEqual([]);
      const launch = shop.current.filter((e) => e.dims.utm_campaign === 'launch' && e.plan !== null);
      expect(digits(await page.textContent('#total-users'))).toBe(exactTotal(launch).users);
      expect(digits(await page.textContent('#total-events'))).toBe(exactTotal(launch).events);
      expect(await page.textContent('#users-change strong')).toBe('new');
      expect(await page.textContent('#events-change strong')).toBe('new');
      // A visit has many properties: the service counts no visits under a property filter, and the page says so.
      expect(await page.isVisible('#visits-refused')).toBe(true);
      expect(await page.textContent('#visits-refused')).toMatch(
        /^No visit figures for these filters: visits are filtered and grouped by what they start with .* not props\.plan/,
      );
      expect(await page.textContent('#total-visits')).toBe('—');
      expect(await page.textContent('#entry-pages tbody')).toMatch(/^headcount refused this panel: visits are filtered/);

      // A property named in the panel: its values, with the filters, and in the URL.
      await page.fill('#prop', 'plan');
      await page.press('#prop', 'Enter');
      await page.waitForSelector('#property tbody tr[data-filter]');
      await loaded();
      expect(await panelRows('property')).toEqual(exactRows(launch, 'props.plan'));
      expect(new URL(page.url()).searchParams.get('prop')).toBe('plan');

      // Without filters, twelve months: the 12 before them are past the sketch retention
      // (400 days), so there is no previous period to show, and the rest of the page stays.
      await page.click('#clear-filters');
      await page.waitForFunction(() => document.querySelectorAll('#chips li').length === 0);
      await loaded();
      expect(urlFilters()).toEqual([]);
      statsRefusals.length = 0;
      await page.selectOption('#range', '12m');
      await page.waitForFunction(() => document.querySelector('#chart-users')?.getAttribute('data-points') !== '7');
      await loaded();
      expect(await page.isHidden('#error')).toBe(true);
      expect(await page.textContent('#users-change')).toBe('No previous period to compare with: its data is no longer kept.');
      expect(digits(await page.textContent('#total-users'))).toBe(exactTotal([...shop.current, ...shop.previous]).users);
      // Refused: the previous period, and the undeclared property over twelve months (from
      // raw events, kept 60 days), which its panel says while the others show their values.
      // Visits are not expired (docs/storage.md, Visits): their previous twelve months are answered (none).
      expect(statsRefusals.map((q) => q.get('compare') ?? q.get('group_by')).sort()).toEqual(['previous_period', 'props.plan']);
      expect(await page.textContent('#visits-change strong')).toBe('new');
      expect(await page.textContent('#property tbody')).toMatch(/^headcount refused this panel: no rollup holds props\.plan/);
      expect(await panelRows('countries')).toEqual(exactRows([...shop.current, ...shop.previous], 'country'));
      expect(pageErrors).toEqual([]);
    });

    it('offers the site’s declared properties, and shows the first when none is chosen', async () => {
      const declared = await request(agent, server.port, 'PATCH', '/v1/sites/shop', JSON.stringify({ props: ['plan'] }), {
        ...asAdmin(),
        'Content-Type': 'application/json',
      });
      expect(declared.status).toBe(200);
      await page.goto(`http://127.0.0.1:${server.port}/?site=shop&range=7d&tz=UTC`);
      await page.waitForSelector('#property tbody tr[data-filter]');
      await loaded();
      expect(await page.inputValue('#prop')).toBe('plan');
      expect(await page.$$eval('#prop-choices option', (options) => options.map((o) => (o as HTMLOptionElement).value))).toEqual([
        'plan',
      ]);
      expect(new URL(page.url()).searchParams.get('prop')).toBe('plan');
      expect(await panelRows('property')).toEqual(exactRows(shop.current, 'props.plan'));
      expect(pageErrors).toEqual([]);
    });
  });
  describe('visits, current visitors and the tracking code (the site blog)', () => {
    /** A visit panel's rows: page, visits, bounce rate as shown; by page. */
    const visitRows = (id: string): Promise<{ page: string; visits: number; bounce: string }[]> =>
      page.$$eval(`#${id} tbody tr`, (trs) =>
        trs
          .map((tr) => ({
            page: (tr as HTMLElement).dataset.value ?? `(no value: ${tr.textContent})`,
            visits: Number(tr.children[1]?.textContent.replace(/\D/g, '')),
            bounce: tr.children[2]?.textContent ?? '',
          }))
          .sort((a, b) => a.page.localeCompare(b.page)),
      );

    it('shows visits, bounce rate and visit duration as counted by hand, each against the previous period', async () => {
      await page.goto(`http://127.0.0.1:${server.port}/`);
      await page.evaluate((key) => localStorage.setItem('headcount.readKey', key), blogKey);
      await page.goto(`http://127.0.0.1:${server.port}/?site=blog&range=7d&tz=UTC`);
      await loaded();
      expect(digits(await page.textContent('#total-users'))).toBe(3);
      expect(digits(await page.textContent('#total-events'))).toBe(9);
      expect(await page.textContent('#users-change strong')).toBe('+50 %');
      expect(await page.textContent('#total-visits')).toBe('5');
      expect(await page.textContent('#visits-change')).toBe('+150 % compared to the previous period (2)');
      expect(await page.getAttribute('#bounce-rate', 'data-value')).toBe('0.4');
      expect(await page.textContent('#bounce-rate')).toBe('40 %');
      // In points, and a fall of the bounce rate is the good direction.
      expect(await page.textContent('#bounce-change')).toBe('−10 pts compared to the previous period (50 %)');
      expect(await page.getAttribute('#bounce-change', 'class')).toBe('change up');
      expect(await page.getAttribute('#visit-duration', 'data-value')).toBe('360');
      expect(await page.getAttribute('#visit-duration', 'data-median')).toBe('300');
      expect(await page.textContent('#visit-duration')).toBe('6 min');
      expect(await page.textContent('#duration-note')).toBe('Mean, from a visit’s first event to its last; median 5 min.');
      expect(await page.textContent('#duration-change')).toBe('+500 % compared to the previous period (1 min)');
      expect(await page.isHidden('#visits-refused')).toBe(true);

      expect(await visitRows('entry-pages')).toEqual([
        { page: '/', visits: 2, bounce: '0 %' },
        { page: '/blog', visits: 1, bounce: '100 %' },
        { page: '/pricing', visits: 2, bounce: '50 %' },
      ]);
      expect(await visitRows('exit-pages')).toEqual([
        { page: '/about', visits: 1, bounce: '0 %' },
        { page: '/blog', visits: 1, bounce: '100 %' },
        { page: '/docs', visits: 1, bounce: '0 %' },
        { page: '/pricing', visits: 2, bounce: '50 %' },
      ]);
      // The service filters users and events by no visit dimension: these rows add no filter.
      expect(await page.locator('#entry-pages tr[data-filter], #exit-pages tr[data-filter]').count()).toBe(0);

      // A filter on what visits start with applies to them (no referrer: all five here, and
      // the request says so); one on the page (a visit has many) is refused, and the page
      // says so while the rest shows the filtered users.
      await page.click('#sources tr[data-filter="referrer=="] td');
      await page.waitForSelector('#chips li[data-filter="referrer=="]');
      await loaded();
      expect(await page.textContent('#total-visits')).toBe('5');
      expect(requested.findLast((p) => p.includes('metrics=visits') && !p.includes('group_by'))).toContain(
        `filter=${encodeURIComponent('referrer==')}`,
      );
      await page.click('#chips li[data-filter="referrer=="] button');
      await page.waitForFunction(() => document.querySelectorAll('#chips li').length === 0);
      await loaded();
      await page.click('#pages tr[data-filter="page==/pricing"] td');
      await page.waitForSelector('#chips li[data-filter="page==/pricing"]');
      await loaded();
      expect(await page.isVisible('#visits-refused')).toBe(true);
      expect(digits(await page.textContent('#total-users'))).toBe(2); // anna, carl
      await page.click('#chips li[data-filter="page==/pricing"] button');
      await page.waitForFunction(() => document.querySelectorAll('#chips li').length === 0);
      await loaded();
      expect(await page.isHidden('#visits-refused')).toBe(true);
      expect(pageErrors).toEqual([]);
    });

    it('updates the current visitors (last 5 minutes) by itself, without reloading, also for a range in the past', async () => {
      // A past range: the page does not re-read it; the current visitors figure re-reads itself.
      const day = isoDate(today() - 3 * DAY_MS);
      await page.goto(`http://127.0.0.1:${server.port}/?site=blog&range=custom&from=${day}&to=${day}&tz=UTC&poll=1`);
      await loaded();
      await page.waitForSelector('#current-visitors[data-users]');
      expect(await page.getAttribute('#current-visitors', 'data-users')).toBe('0');
      await page.evaluate(() => ((window as unknown as { notReloaded: boolean }).notReloaded = true));
      const mark = requested.length;
      const res = await request(
        agent,
        server.port,
        'POST',
        '/v1/events',
        JSON.stringify({ events: [{ site: 'blog', user: 'reader-now', kind: 'pageview', page: '/' }] }),
        asAdmin(),
      );
      expect(res.status).toBe(200);
      await expect.poll(() => page.getAttribute('#current-visitors', 'data-users'), { timeout: 10_000 }).toBe('1');
      expect(await page.textContent('#current-visitors')).toBe('1');
      expect(await page.evaluate(() => (window as unknown as { notReloaded?: boolean }).notReloaded)).toBe(true);
      // Only the current visitors were read again (the range is past): one request at a time.
      const since = requested.slice(mark).filter((p) => p.startsWith('/v1/stats?'));
      expect(since.length).toBeGreaterThan(0);
      expect(since.filter((p) => !p.includes('period=5m'))).toEqual([]);
      const asked = new URL(since.at(-1)!, 'http://x').searchParams;
      expect(Object.fromEntries(asked)).toEqual({ site: 'blog', timezone: 'UTC', period: '5m', metrics: 'users' });

      // A hidden page asks nothing; shown again, it reads at once (then every interval).
      const setVisibility = (state: 'hidden' | 'visible') =>
        page.evaluate((s) => {
          Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => s });
          document.dispatchEvent(new Event('visibilitychange'));
        }, state);
      await setVisibility('hidden');
      const hiddenAt = requested.length;
      // Absence cannot be polled: three intervals (1 s here) with nothing asked.
      await new Promise((resolve) => setTimeout(resolve, 3000));
      expect(requested.slice(hiddenAt).filter((p) => p.includes('period=5m'))).toEqual([]);
      await setVisibility('visible');
      await expect.poll(() => requested.slice(hiddenAt).filter((p) => p.includes('period=5m')).length).toBeGreaterThan(0);
      expect(pageErrors).toEqual([]);
    });

    it('waits for Retry-After between reads of the current visitors when the service answers 429', async () => {
      // Still the past range with ?poll=1: without the 429s the figure is read every second.
      const isLive = (url: URL): boolean => url.pathname === '/v1/stats' && url.searchParams.get('period') === '5m';
      const askedAtMs: number[] = [];
      await page.route(isLive, (route) => {
        askedAtMs.push(Date.now());
        return route.fulfill({
          status: 429,
          headers: { 'Retry-After': '2', 'Content-Type': 'application/json' },
          body: JSON.stringify({ error: { code: 'rate_limited', message: 'too many requests with this key' } }),
        });
      });
      try {
        await expect.poll(() => askedAtMs.length, { timeout: 20_000 }).toBeGreaterThanOrEqual(5);
        // Retries after Retry-After (3 of them), then the next read no sooner either: never
        // the 1 s interval (a lower bound on the page's waits, not a duration of the service).
        const gapsMs = askedAtMs.slice(1).map((t, i) => t - askedAtMs[i]!);
        expect(Math.min(...gapsMs)).toBeGreaterThanOrEqual(1900);
        await expect.poll(() => page.textContent('#current-visitors')).toBe('—');
        expect(await page.textContent('#current-note')).toMatch(/^Not known now \(too many requests with this key\); trying again in 2 s\.$/);
      } finally {
        await page.unroute(isLive);
      }
      // The service answers again: so does the figure.
      await expect.poll(() => page.getAttribute('#current-visitors', 'data-users'), { timeout: 10_000 }).toBe('1');
    });

    it('shows the tracking code with a placeholder to a read key, and with a new ingest key to an admin key: that key sends the site’s events', async () => {
      const keyCount = async () => first(await db.sql`select count(*)::int as n from headcount_api_keys`).n;
      await page.goto(`http://127.0.0.1:${server.port}/?site=blog&range=7d&tz=UTC`);
      await loaded();
      const origin = `http://127.0.0.1:${server.port}`;
      expect(await page.textContent('#embed-site')).toBe('blog');
      expect(await page.textContent('#embed-tag')).toBe(
        `<script defer src="${origin}${SCRIPT_PATH}" data-site="blog" data-key="hck_…"></script>`,
      );
      expect(await page.textContent('#embed-key')).toContain('npm run keys -- create --site blog --scope ingest');
      // A read key may not create keys: the panel says how to get one.
      const before = await keyCount();
      await page.click('#embed-create');
      await expect.poll(() => page.textContent('#embed-status')).toContain('may not create keys (only an admin key may)');
      expect(await keyCount()).toBe(before);
      expect(await page.textContent('#embed-tag')).toContain('data-key="hck_…"');

      // An admin key makes an ingest key of the site, shown in the line once.
      await page.evaluate((key) => localStorage.setItem('headcount.readKey', key), adminKey);
      await page.reload();
      await loaded();
      await page.click('#embed-create');
      await page.waitForFunction(() => !document.querySelector('#embed-tag')?.textContent.includes('hck_…'));
      const tag = (await page.textContent('#embed-tag'))!;
      const match = /^<script defer src="([^"]+)" data-site="blog" data-key="(hck_[A-Za-z0-9_-]{43})"><\/script>$/.exec(tag);
      expect(match, tag).not.toBeNull();
      const [, src, key] = match!;
      expect(src).toBe(`${origin}${SCRIPT_PATH}`);
      expect(await page.isHidden('#embed-create')).toBe(true);
      expect(first(await db.sql`select scope, site from headcount_api_keys order by created_at desc limit 1`)).toEqual({
        scope: 'ingest',
        site: 'blog',
      });
      // The line's script is served there.
      const script = await request(agent, server.port, 'GET', SCRIPT_PATH);
      expect(script.status).toBe(200);
      expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
      // What the script sends with the line's key (text/plain, ?key=, a browser's user agent:
      // headless Chromium's is a bot's): a page view of the site, counted with a visitor id
      // the service derives.
      const beacon = await fetch(`${origin}/v1/events?key=${key}`, {
        method: 'POST',
        headers: {
          'Content-Type': 'text/plain',
          'User-Agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
        },
        body: JSON.stringify({ events: [{ site: 'blog', kind: 'pageview', page: '/embedded', screen_width: 1200 }] }),
      });
      const sent: unknown = await beacon.json();
      expect(sent).toMatchObject({ accepted: 1, rejected: [] });
      const counted = await api(`/v1/stats?site=blog&period=5m&filter=${encodeURIComponent('page==/embedded')}`);
      expect(counted.data[0]).toMatchObject({ users: 1, events: 1 });
      // It sends nothing to another site, and reads nothing.
      const other = await request(agent, server.port, 'GET', '/v1/stats?site=blog&period=5m', undefined, {
        Authorization: `Bearer ${key!}`,
      });
      expect(other.status).toBe(403);
      await page.evaluate((k) => localStorage.setItem('headcount.readKey', k), readKey);
      expect(pageErrors).toEqual([]);
    });
  });
});
