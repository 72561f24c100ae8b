import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertEvents } from '../../src/ingest/writer.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { modeAvailable } from '../helpers/db.js';
import { mixedEvents } from '../helpers/events.js';
import { daysAgo, isoDate } from '../helpers/time.js';

// The comparison needs both modes: TimescaleDB must be installed.
describe.skipIf(!modeAvailable('timescaledb'))('/v1/stats answers the same in both storage modes', () => {
  let pg: TestApp;
  let ts: TestApp;
  const events = mixedEvents(6000, 40).map((e, i) => ({ ...e, site: i % 3 === 0 ? 'shop' : 'default' }));
  const queries: Record<string, string | string[]>[] = [
    { from: isoDate(daysAgo(30)), to: isoDate(daysAgo(-1)) },
    { from: isoDate(daysAgo(30)), to: isoDate(daysAgo(-1)), granularity: 'day', timezone: 'Asia/Kolkata' },
    { from: isoDate(daysAgo(41)), to: isoDate(daysAgo(-1)), granularity: 'week', timezone: 'America/New_York', site: 'shop' },
    { from: isoDate(daysAgo(3)), to: isoDate(daysAgo(1)), granularity: 'hour', timezone: '+05:45' },
    { from: isoDate(daysAgo(20)), to: isoDate(daysAgo(-1)), granularity: 'month', group_by: 'kind' },
    { from: isoDate(daysAgo(20)), to: isoDate(daysAgo(-1)), granularity: 'day', group_by: 'page', kind: 'pageview', limit: '3' },
    {
      from: new Date(daysAgo(2)).toISOString(),
      to: new Date(daysAgo(1)).toISOString(),
      granularity: 'minute',
      kind: ['click', 'impression'],
    },
  ];
  const answers = async (app: TestApp) => {
    const all = [];
    for (const q of queries) {
      const res = await app.http.get('/v1/stats').query(q);
      expect(res.status, JSON.stringify(q)).toBe(200);
      all.push(res.body);
    }
    return all;
  };

  beforeAll(async () => {
    [pg, ts] = await Promise.all([startTestApp('postgres'), startTestApp('timescaledb')]);
  });
  afterAll(async () => {
    await Promise.all([pg?.close(), ts?.close()]);
  });

  it('before and after the continuous aggregates are materialized, with back-dated writes below the watermark', async () => {
    for (let i = 0; i < 3000; i += 1000) {
      await Promise.all([insertEvents(pg.db.sql, events.slice(i, i + 1000)), insertEvents(ts.db.sql, events.slice(i, i + 1000))]);
    }
    const first = await answers(pg);
    expect(first.some((a: { data: { users: number }[] }) => a.data.some((r) => r.users > 0))).toBe(true);
    expect(await answers(ts)).toEqual(first);
    await ts.materialize();
    for (let i = 3000; i < events.length; i += 1000) {
      await Promise.all([insertEvents(pg.db.sql, events.slice(i, i + 1000)), insertEvents(ts.db.sql, events.slice(i, i + 1000))]);
    }
    const second = await answers(pg);
    expect(second).not.toEqual(first);
    expect(await answers(ts)).toEqual(second);
    expect([...pg.openApiViolations, ...ts.openApiViolations]).toEqual([]);
  });
});
