import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findChromium, launchChromium } from '../helpers/chromium.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { type Running, startServer } from '../helpers/server.js';

const chromium = await findChromium();
const missing = 'missing' in chromium ? chromium.missing : undefined;
if (missing) console.log(`/docs browser test: skipped, ${missing}`);

describe.skipIf(missing !== undefined)(
  `/docs in Chromium, under its Content-Security-Policy${missing ? ` (${missing})` : ''}`,
  () => {
    let db: TestDatabase;
    let server: Running;
    let browser: Browser;
    let page: Page;
    /** Console errors, uncaught exceptions and CSP violation reports of the page. */
    const problems: string[] = [];
    const requested: string[] = [];

    beforeAll(async () => {
      db = await createTestDatabase('postgres');
      server = await startServer({ DATABASE_URL: db.url });
      browser = await launchChromium((chromium as { path: string }).path);
      const context = await browser.newContext();
      // Strings: the page's code runs in the browser, where the DOM's types live.
      await context.addInitScript({
        content: `document.addEventListener('securitypolicyviolation', (e) =>
        console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));`,
      });
      page = await context.newPage();
      page.on('request', (req) => requested.push(req.url()));
      page.on('pageerror', (err) => problems.push(err.message));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(msg.text());
      });
    });

    afterAll(async () => {
      await browser?.close();
      if (server) {
        server.child.kill('SIGTERM');
        await server.exited;
      }
      await db?.drop();
    });

    it('renders the API with no policy violation, loading nothing from another host', async () => {
      const res = await page.goto(`http://127.0.0.1:${server.port}/docs`);
      expect(res?.status()).toBe(200);
      expect(res?.headers()['content-security-policy']).toMatch(/script-src 'self'(;|$)/);
      await page.waitForSelector('.swagger-ui .info .title');
      expect(await page.textContent('.swagger-ui .info .title')).toContain('headcount');
      // An operation opens (Swagger UI's React rendering, styles included).
      await page.click('.opblock-summary >> nth=0');
      await page.waitForSelector('.opblock-body');
      // "Try it out": the form Swagger UI renders for a call.
      await page.click('.opblock-body .try-out__btn', { timeout: 5000 });
      await page.waitForSelector('.opblock-body .execute', { timeout: 5000 });
      expect(problems).toEqual([]);
      expect(requested.filter((url) => !url.startsWith(`http://127.0.0.1:${server.port}/`) && !url.startsWith('data:'))).toEqual(
        [],
      );
    });

    it('runs no script that is not a file of this service', async () => {
      const ran = await page.evaluate(`(() => {
      const script = document.createElement('script');
      script.textContent = 'window.injected = true';
      document.body.append(script);
      return window.injected === true;
    })()`);
      expect(ran).toBe(false);
      // The report arrives as an event after the refusal.
      await expect.poll(() => problems.some((p) => /CSP violation: script-src/.test(p))).toBe(true);
    });
  },
);
