import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS } from '../../src/time.js';
import { findChromium, launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { prng } from '../helpers/events.js';
import { createKey } from '../../src/v1/auth/keys.js';
import { type Running, request, startServer } from '../helpers/server.js';
import { tcpProxy, tcpTarget, type TcpProxy } from '../helpers/tcp-proxy.js';
import { today } from '../helpers/time.js';

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
      series: find((q) => q.get('granularity') !== 'total'),
      total: find((q) => q.get('granularity') === 'total' && !q.has('group_by')),
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
    proxy = await tcpProxy(tcpTarget(db.url));
    await proxy.up();
    // /v1 needs keys (the default): the page asks for a read key; the test seeds with an admin key.
    server = await startServer({ DATABASE_URL: proxy.via(db.url) });
    adminKey = (await createKey(db.sql, { scope: 'admin', site: null, name: 'test' })).key;
    readKey = (await createKey(db.sql, { scope: 'read', site: 'default', name: 'dashboard' })).key;
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
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      // A 503 answer is logged by Chromium itself; the page shows it (see the outage test).
      if (msg.type() === 'error' && !/status of (503|401)/.test(msg.text())) pageErrors.push(msg.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await proxy?.up();
    if (server) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await proxy?.down();
    agent.destroy();
    await db?.drop();
  });

  it('prints its URL at start and opens in the browser’s time zone, reading /v1/stats only', async () => {
    expect(server.output()).toContain(`dashboard: http://127.0.0.1:${server.port}/`);
    await page.goto(`http://127.0.0.1:${server.port}/?range=7d&poll=1`);
    // No key yet: the page asks for a read key, once, and keeps it in the browser's storage.
    await page.waitForSelector('#key-form input', { state: 'visible' });
    expect(await page.textContent('#error')).toContain('401');
    await page.fill('#key-form input', readKey);
    await page.press('#key-form input', 'Enter');
    await loaded();
    expect(await page.evaluate(() => localStorage.getItem('headcount.readKey'))).toBe(readKey);
    expect(requested.some((p) => p.includes(readKey))).toBe(false);
    expect(page.url()).not.toContain(readKey);
    expect(await page.inputValue('#tz')).toBe('America/New_York');
    expect(new URL(lastStatsUrls().total, 'http://x').searchParams.get('timezone')).toBe('America/New_York');
    const paths = new Set(requested.map((p) => p.split('?')[0]));
    expect([...paths].filter((p) => p !== '/' && p !== '/v1/stats' && !/^\/assets\/app-\w+\.(js|css)$/.test(p!))).toEqual([]);
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
      pages.data.map((r) => ({ name: r.page || '(no page)', users: r.users, events: r.events })),
    );

    mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
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
    for (let i = 0; i < 8 && (await page.evaluate(() => document.activeElement?.id)) !== 'range'; i++)
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
    await page.fill('#site', '');
    await page.press('#site', 'Enter');
    await page.waitForFunction(() => document.querySelector('#empty')?.hasAttribute('hidden'));
    await page.evaluate((key) => localStorage.setItem('headcount.readKey', key), readKey);
  });

  it('shows that the database is down instead of a chart, and recovers by itself', async () => {
    await loaded();
    await proxy.down();
    await page.waitForSelector('#error:not([hidden])', { timeout: 15_000 });
    expect(await page.textContent('#error')).toContain('The database is not answering');
    expect(await page.isHidden('#results')).toBe(true);
    await proxy.up();
    await page.waitForSelector('#results:not([hidden])', { timeout: 15_000 });
    expect(await page.isHidden('#error')).toBe(true);
    expect(digits(await page.textContent('#total-users'))).toBe(seededUsers + 1);
    expect(pageErrors).toEqual([]);
  });
});
