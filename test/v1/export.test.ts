import { describe, expect, it } from 'vitest';
import { DAY_MS, HOUR_MS } from '../../src/time.js';
import { useTestApp } from '../helpers/app.js';
import { describeEachMode, modeAvailable } from '../helpers/db.js';
import { daysAgo, isoDate } from '../helpers/time.js';

describeEachMode('GET /v1/export', (mode) => {
  const t = useTestApp(mode);
  const day = daysAgo(5);

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
    const nd = await t.http
      .get('/v1/export')
      .query(range)
      .buffer(true)
      .parse((res, done) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => done(null, text));
      });
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
    // An export can be sent back: its events are duplicates where they carry ids.
    const back = await t.http.post('/v1/events').send({ events: lines.map(({ id, ...e }) => (id ? { ...e, id } : e)) });
    expect(back.body).toMatchObject({ accepted: 1, duplicates: 1 });

    const csv = await t.http.get('/v1/export').query({ ...range, format: 'csv', timezone: 'UTC' });
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(csv.headers['content-disposition']).toMatch(/\.csv"$/);
    expect(csv.text.split('\r\n').slice(0, 3)).toEqual([
      'time,site,kind,user,page,weight,id',
      `${new Date(day + HOUR_MS).toISOString()},default,view,"a","",1,`,
      `${new Date(day + HOUR_MS).toISOString()},default,view,"a","",1,`,
    ]);
    expect(csv.text).toContain(`${new Date(day + 2 * HOUR_MS).toISOString()},default,click,"b","/a,""b""\nc",2,"x1"\r\n`);
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
    // Only the raw rows matter here: the aggregate trigger is skipped (replica role) to save time.
    await t.db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`
        insert into events (site, time, kind, user_id, page, weight)
        select 'big', ${new Date(from)}::timestamptz + i * interval '100 ms', 'view', 'user-' || (i % 50000), '/page/' || (i % 100), 1
        from generate_series(0, 999999) i
      `;
    });
    // Sampled every 100,000 rows after a full garbage collection: RSS, and what is alive
    // (the JS heap and the buffers outside it). The first sample is taken once the stream
    // is under way (buffers, the first batches); flat means no growth over the other
    // 900,000 rows.
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) throw new Error('run with --expose-gc (vitest.config.ts execArgv)');
    const sample = () => {
      gc();
      const m = process.memoryUsage();
      return { rss: m.rss, live: m.heapUsed + m.external };
    };
    const baseline = sample();
    const samples: { rss: number; live: number }[] = [];
    let bytes = 0;
    let newlines = 0;
    const started = performance.now();
    const res = await t.http
      .get('/v1/export')
      .query({ site: 'big', from: isoDate(from), to: isoDate(from + 2 * DAY_MS) })
      .buffer(true)
      .parse((stream, done) => {
        // Count as it arrives; keep nothing.
        stream.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) {
            if (++newlines % 100_000 === 0) samples.push(sample());
          }
        });
        stream.on('end', () => done(null, null));
      });
    const seconds = (performance.now() - started) / 1000;
    expect(res.status).toBe(200);
    expect(newlines).toBe(1_000_000);
    const mb = (n: number) => (n / 1e6).toFixed(1);
    const after = samples.slice(1);
    const peak = (key: 'rss' | 'live') => Math.max(...after.map((m) => m[key]));
    console.log(
      `export of 1,000,000 rows (${mode} mode): ${mb(bytes)} MB in ${seconds.toFixed(1)} s; server and client share this process. ` +
        `RSS ${mb(baseline.rss)} MB before, ${mb(samples[0]!.rss)} MB at 100,000 rows, peak ${mb(peak('rss'))} MB over the next 900,000; ` +
        `live heap+external ${mb(baseline.live)} → ${mb(samples[0]!.live)} → peak ${mb(peak('live'))} MB`,
    );
    expect(samples).toHaveLength(10);
    // Holding the body (~120 MB) or the rows would grow both with every row, past these
    // bounds. Node 20 measured +7 MB live / +18 MB RSS over the last 900,000 rows; Node 24,
    // whose streams buffer more, +25 MB / +68 MB: bounded, and a quarter of the body.
    expect(peak('live') - samples[0]!.live).toBeLessThan(40e6);
    expect(peak('rss') - samples[0]!.rss).toBeLessThan(100e6);
  });
});
