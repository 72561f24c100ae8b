import { afterEach, expect, it } from 'vitest';
import type { RuntimeConfig } from '../../src/runtime.js';
import { HOUR_MS } from '../../src/time.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { describeEachMode, first } from '../helpers/db.js';
import { eventually } from '../helpers/time.js';

/**
 * The roller waits for a batch worth rolling: a roll costs per value it touches, so
 * rolling every second at a few events a second cost ~40 times more PostgreSQL CPU per
 * event than rolling thousands at once (npm run bench:roller). It rolls the queue up once
 * it holds ROLLUP_MIN_ROWS events or ROLLUP_MAX_WAIT_MS after its last pass; meanwhile
 * reads add what is queued.
 */
describeEachMode('the dimension roller', (mode) => {
  let t: TestApp | undefined;
  afterEach(async () => {
    await t?.close();
    t = undefined;
  });
  const start = async (timing: Partial<RuntimeConfig>) => {
    t = await startTestApp(mode, { rollupIntervalMs: 50, ...timing });
    // Its first look runs a pass at once: let it end on the empty queue.
    await t.runtime.roller.stop();
    t.runtime.roller.start();
    return t;
  };
  const send = (app: TestApp, n: number, from: number) =>
    app.http.post('/v1/events').send({
      events: Array.from({ length: n }, (_, i) => ({
        user: `u${from + i}`,
        kind: 'visit',
        country: i % 2 ? 'DE' : 'FR',
        time: new Date(Date.now() - HOUR_MS + (from + i) * 1000).toISOString(),
      })),
    });
  const queued = async (app: TestApp) => first(await app.db.sql`select count(*)::int as n from headcount_pending`).n as number;
  /** Users per country over the last two hours, by /v1/stats. */
  const byCountry = async (app: TestApp): Promise<[string, number][]> => {
    const res = await app.http.get('/v1/stats').query({
      from: `${new Date(Date.now() - 2 * HOUR_MS).toISOString().slice(0, 13)}:00:00Z`,
      to: `${new Date(Date.now() + 60_000).toISOString().slice(0, 16)}Z`,
      group_by: 'country',
    });
    expect(res.status).toBe(200);
    return (res.body as { data: { country: string; users: number }[] }).data.map((r) => [r.country, r.users]);
  };

  it('leaves fewer than ROLLUP_MIN_ROWS queued until ROLLUP_MAX_WAIT_MS, and reads count them meanwhile', async () => {
    const app = await start({ rollupMinRows: 100, rollupMaxWaitMs: 600_000 });
    expect((await send(app, 10, 0)).status).toBe(200);
    // Ten looks later, still queued, and answered.
    await new Promise((r) => setTimeout(r, 500));
    expect(await queued(app)).toBe(10);
    expect(await byCountry(app)).toEqual([
      ['DE', 5],
      ['FR', 5],
    ]);
    // The 100th queued event makes the queue worth a pass.
    expect((await send(app, 90, 10)).status).toBe(200);
    expect((await eventually(() => queued(app), 0, 10_000)).value).toBe(0);
    expect(await byCountry(app)).toEqual([
      ['DE', 50],
      ['FR', 50],
    ]);
  });

  it('rolls up a short queue ROLLUP_MAX_WAIT_MS after its last pass', async () => {
    const app = await start({ rollupMinRows: 20_000, rollupMaxWaitMs: 300 });
    expect((await send(app, 10, 0)).status).toBe(200);
    expect((await eventually(() => queued(app), 0, 10_000)).value).toBe(0);
    expect(await byCountry(app)).toEqual([
      ['DE', 5],
      ['FR', 5],
    ]);
  });
});
