import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/v1/auth/keys.js';
import { findChromium, launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { type Running, request, startServer } from '../helpers/server.js';

const chromium = await findChromium();
const missing = 'missing' in chromium ? chromium.missing : undefined;
if (missing) console.log(`tracker browser test: skipped, ${missing}`);

/** The script as built (npm run build): what GET /script.js serves. */
const BUILT = 'dist/web/tracker.js';

/** A desktop Chrome: HeadlessChrome's own user agent is a bot's (isbot), whose events are dropped. */
const CHROME_UA =
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36';

describe('the tracker script', () => {
  it('is at most 2 KB gzipped', () => {
    const size = gzipSync(readFileSync(BUILT), { level: 9 }).length;
    console.log(`tracker: ${readFileSync(BUILT).length} bytes, ${size} gzipped`);
    expect(size).toBeLessThanOrEqual(2048);
  });
});

interface Stored {
  kind: string;
  page: string;
  user_id: string;
  referrer: string | null;
  utm_source: string | null;
  device: string | null;
  browser: string | null;
  props: Record<string, string> | null;
}

describe.skipIf(missing !== undefined)(`the tracker in Chromium${missing ? ` (${missing})` : ''}`, () => {
  let db: TestDatabase;
  let server: Running;
  let site: http.Server;
  let sitePort: number;
  let browser: Browser;
  let context: BrowserContext;
  let key: string;
  const agent = new http.Agent({ keepAlive: true });

  /** A page of the static site that embeds the tracker with `attrs`; `body` goes into <body>. */
  const pages = new Map<string, string>();
  const page = (path: string, attrs: string, body = '', head = ''): string => {
    pages.set(
      path,
      `<!doctype html><html><head>${head}<script defer src="http://127.0.0.1:${server.port}/hc.js" data-site="shop" data-key="${key}" ${attrs}></script></head><body>${body}</body></html>`,
    );
    return `http://localhost:${sitePort}${path}`;
  };

  const events = (): Promise<Stored[]> =>
    db.sql<Stored[]>`select kind, page, user_id, referrer, utm_source, device, browser, props from events where site = 'shop' order by time, kind`;
  /** Polls the database until `test` holds of the stored events (a beacon is sent after the page's work). */
  const until = async (test: (rows: Stored[]) => boolean): Promise<Stored[]> => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const rows = await events();
      if (test(rows)) return rows;
      if (Date.now() > deadline) throw new Error(`not stored in time; stored: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    server = await startServer({ DATABASE_URL: db.url, TRACKER_SCRIPT_PATH: '/hc.js' });
    key = (await createKey(db.sql, { scope: 'ingest', site: 'shop', name: 'tracker' })).key;
    site = http.createServer((req, res) => {
      const html = pages.get(new URL(req.url ?? '/', 'http://x').pathname);
      res.writeHead(html ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(html ?? 'not found');
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    sitePort = (site.address() as AddressInfo).port;
    browser = await launchChromium((chromium as { path: string }).path);
    context = await browser.newContext({ userAgent: CHROME_UA, viewport: { width: 1280, height: 800 } });
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    site?.close();
    agent.destroy();
    server?.child.kill('SIGTERM');
    await server?.exited;
    await db?.drop();
  });

  it('serves the script at /script.js and TRACKER_SCRIPT_PATH, gzipped when asked', async () => {
    const built = readFileSync(BUILT, 'utf8');
    for (const path of ['/script.js', '/hc.js']) {
      const res = await request(agent, server.port, 'GET', path);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(res.body).toBe(built);
    }
    const gz = await request(agent, server.port, 'GET', '/script.js', undefined, { 'Accept-Encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
  });

  it('sends a pageview on load, on SPA navigation and hash changes, custom events (queued before it loaded too), and outbound links', async () => {
    const url = page(
      '/spa',
      'data-allow-localhost data-outbound-links',
      `<a id="out" href="http://127.0.0.2:9/elsewhere">out</a><a id="in" href="/spa#inside">in</a>`,
      `<script>window.headcount=window.headcount||function(){(headcount.q=headcount.q||[]).push(arguments)};headcount('early',{props:{plan:'pro'}})</script>`,
    );
    const tab = await context.newPage();
    await tab.goto(`${url}?utm_source=newsletter&secret=1`, { referer: 'https://news.ycombinator.com/item?id=1' });
    let rows = await until((r) => r.some((e) => e.kind === 'pageview') && r.some((e) => e.kind === 'early'));
    const first = rows.find((e) => e.kind === 'pageview')!;
    expect(first).toMatchObject({
      page: '/spa?utm_source=newsletter',
      referrer: 'news.ycombinator.com',
      utm_source: 'newsletter',
      device: 'desktop',
      browser: 'Chrome',
    });
    expect(first.user_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(rows.find((e) => e.kind === 'early')!.props).toEqual({ plan: 'pro' });

    await tab.evaluate("history.pushState({}, '', '/spa/two')");
    await until((r) => r.some((e) => e.page === '/spa/two'));
    await tab.evaluate("location.hash = '#three'");
    await until((r) => r.filter((e) => e.page === '/spa/two').length === 2);
    // Back from #three to /spa/two (popstate); the hash was a page of its own.
    await tab.goBack();
    await until((r) => r.filter((e) => e.page === '/spa/two').length === 3);
    await tab.evaluate(() => (window as unknown as { headcount: (k: string, o: object) => void }).headcount('signup', { props: { plan: 'team' } }));
    await until((r) => r.some((e) => e.kind === 'signup'));
    await tab.click('#out');
    rows = await until((r) => r.some((e) => e.kind === 'outbound_link'));
    expect(rows.find((e) => e.kind === 'outbound_link')!.props).toEqual({ url: 'http://127.0.0.2:9/elsewhere' });
    // One visitor: the same address and user agent, the same day.
    expect(new Set(rows.map((e) => e.user_id)).size).toBe(1);
    await tab.close();
  });

  it('sends nothing on localhost unless data-allow-localhost, nor with Do Not Track when data-respect-dnt', async () => {
    const tab = await context.newPage();
    // Do Not Track, as the browser's setting shows it to scripts.
    await tab.addInitScript(() => Object.defineProperty(Navigator.prototype, 'doNotTrack', { get: () => '1' }));
    await tab.goto(page('/local', ''));
    await tab.evaluate(() => (window as unknown as { headcount: (k: string) => void }).headcount('local_probe'));
    await tab.goto(page('/dnt', 'data-allow-localhost data-respect-dnt'));
    await tab.evaluate(() => (window as unknown as { headcount: (k: string) => void }).headcount('dnt_probe'));
    // The control: the same browser, Do Not Track not respected: sent.
    await tab.goto(page('/control', 'data-allow-localhost'));
    const rows = await until((r) => r.some((e) => e.page === '/control'));
    expect(rows.map((e) => e.page).filter((p) => ['/local', '/dnt', '/control'].includes(p))).toEqual(['/control']);
    await tab.close();
  });
});
