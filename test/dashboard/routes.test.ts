import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import supertest from 'supertest';
import { describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { DASHBOARD_DIR } from '../../src/dashboard/routes.js';
import { silentLogger } from '../../src/log.js';
import { DEFAULT_TRACKER } from '../../src/tracker/settings.js';
import { TEST_SITE, useTestApp } from '../helpers/app.js';

/** The build's script and stylesheet (`npm test` builds first). */
const manifest = JSON.parse(fs.readFileSync(path.join(DASHBOARD_DIR, 'manifest.json'), 'utf8')) as {
  script: string;
  style: string;
};

describe('the dashboard’s files', () => {
  const t = useTestApp('postgres', { resetEach: false });

  it('serves the page at / with no-cache and an ETag, and 304 when it has not changed', async () => {
    const res = await t.http.get('/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.text).toContain(`<script defer src="/assets/${manifest.script}"></script>`);
    expect(res.text).toContain(`<link rel="stylesheet" href="/assets/${manifest.style}">`);
    // Nothing from another host.
    expect(res.text).not.toMatch(/(src|href)="(https?:)?\/\//);
    const again = await t.http.get('/').set('If-None-Match', res.headers.etag!);
    expect(again.status).toBe(304);
  });

  it('serves hashed assets for a year, immutable, brotli or gzip as the client accepts', async () => {
    const script = `/assets/${manifest.script}`;
    expect(manifest.script).toMatch(/^app-[A-Z0-9]{8}\.js$/);
    const br = await t.http
      .get(script)
      .set('Accept-Encoding', 'br, gzip')
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
    expect(br.status).toBe(200);
    expect(br.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers['vary']).toBe('Accept-Encoding');
    expect(br.headers['content-type']).toBe('text/javascript; charset=utf-8');
    const gzip = await t.http.get(script).set('Accept-Encoding', 'gzip');
    expect(gzip.headers['content-encoding']).toBe('gzip');
    const plain = await t.http.get(`/assets/${manifest.style}`).set('Accept-Encoding', 'identity');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers['content-type']).toBe('text/css; charset=utf-8');
    expect(plain.text).toContain('.u-legend');
    expect((await t.http.get('/assets/app-NOTTHERE.js')).status).toBe(404);
  });

  it('keeps the page’s JavaScript under 100 KB gzipped', () => {
    const js = fs.readFileSync(path.join(DASHBOARD_DIR, 'assets', manifest.script));
    const gzipped = gzipSync(js).length;
    console.log(`dashboard JavaScript: ${js.length} bytes, ${gzipped} gzipped`);
    expect(gzipped).toBeLessThan(100 * 1024);
  });

  it('names the tracker’s path in the page for its tracking code panel: TRACKER_SCRIPT_PATH when set, else /script.js', async () => {
    expect((await t.http.get('/')).text).toContain('<meta name="headcount-script" content="/script.js">');
    const app = createApp({
      sql: t.db.sql,
      writer: t.runtime.writer,
      site: TEST_SITE,
      log: silentLogger,
      tracker: { ...DEFAULT_TRACKER, scriptPath: '/js/hc.js' },
    });
    const page = await supertest(app.callback()).get('/');
    expect(page.text).toContain('<meta name="headcount-script" content="/js/hc.js">');
    expect(page.text).not.toContain('/script.js');
    // Another page, another ETag: a browser that kept the other one gets this one.
    expect(page.headers.etag).not.toBe((await t.http.get('/')).headers.etag);
    expect((await supertest(app.callback()).get('/js/hc.js')).status).toBe(200);
  });

  it('is off with DASHBOARD=false: GET / is a 404', async () => {
    expect(loadConfig({}).dashboard).toBe(true);
    expect(loadConfig({ DASHBOARD: 'false' }).dashboard).toBe(false);
    const app = createApp({ sql: t.db.sql, writer: t.runtime.writer, site: TEST_SITE, log: silentLogger, dashboard: false });
    const res = await supertest(app.callback()).get('/');
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    expect((await supertest(app.callback()).get(`/assets/${manifest.script}`)).status).toBe(404);
  });

  it('answers 503 saying to build it when its files are missing', async () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'headcount-no-dashboard-'));
    try {
      const app = createApp({
        sql: t.db.sql,
        writer: t.runtime.writer,
        site: TEST_SITE,
        log: silentLogger,
        dashboard: { dir: empty },
      });
      const res = await supertest(app.callback()).get('/');
      expect(res.status).toBe(503);
      expect(res.body.error).toEqual({ code: 'dashboard_not_built', message: 'the dashboard is not built: run npm run build' });
    } finally {
      fs.rmSync(empty, { recursive: true });
    }
  });
});
