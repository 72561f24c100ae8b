import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createSql } from '../../src/db/client.js';
import { createKey } from '../../src/v1/auth/keys.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { describeEachModeWithCitus } from '../helpers/db.js';
import { daysAgo, eventually, isoDate } from '../helpers/time.js';

/** The roller's advisory lock (sql/common/headcount_roll_up.sql): held, nothing is rolled up. */
const ROLLER_LOCK = 1751937123;
const MINUTE_MS = 60_000;

describeEachModeWithCitus('/v1/sites', (mode) => {
  let t: TestApp;
  const keys: Record<string, string> = {};
  beforeAll(async () => {
    // One app and one admin key for every test of the file: the read rate limit (40 at
    // once, then 10 a second) ran out in a full run (429); rate limits are keys.test.ts's.
    const unlimited = { ratePerSecond: 1_000_000, burst: 1_000_000 };
    t = await startTestApp(mode, {}, undefined, { v1Auth: 'keys', rateLimits: { ingest: unlimited, read: unlimited } });
    for (const [name, scope, site] of [
      ['admin', 'admin', null],
      ['shopRead', 'read', 'shop'],
      ['shopIngest', 'ingest', 'shop'],
      ['blogRead', 'read', 'blog'],
    ] as const) {
      keys[name] = (await createKey(t.db.sql, { scope, site, name })).key;
    }
  });
  afterAll(async () => t?.close());
  beforeEach(async () => t.db.reset());
  afterEach(() => {
    // Every /v1 response of the test matches the OpenAPI document.
    expect(t.openApiViolations.splice(0)).toEqual([]);
  });

  const as = (key: string) => ({ Authorization: `Bearer ${keys[key]}` });
  const send = async (events: { site: string; time: number; user: string; weight?: number }[]) => {
    const res = await t.http
      .post('/v1/events')
      .set(as('admin'))
      .send({ events: events.map((e) => ({ ...e, kind: 'visit', time: new Date(e.time).toISOString() })) });
    expect(res.body).toMatchObject({ accepted: events.length, rejected: [] });
  };
  const sites = async (key: string) => {
    const res = await t.http.get('/v1/sites').set(as(key));
    expect(res.status).toBe(200);
    return res.body as { data: Record<string, unknown>[] };
  };
  const queued = async () => (await t.db.sql<{ n: number }[]>`select count(*)::int as n from headcount_pending`)[0]!.n;
  /** Until the queue is empty: headcount_roll_up answers 0 while the service's roller holds its lock. */
  const rollAll = async () => {
    while ((await queued()) > 0) {
      const [row] = await t.db.sql<{ moved: number }[]>`select headcount_roll_up() as moved`;
      if (row!.moved === 0) await new Promise((r) => setTimeout(r, 20));
    }
  };
  /** Runs `fn` while the roller cannot move anything: what is sent stays queued. */
  const withRollerHeld = async (fn: () => Promise<void>) => {
    const holder = createSql(t.db.url, { max: 1 });
    try {
      await holder`select pg_advisory_lock(${ROLLER_LOCK})`;
      await fn();
    } finally {
      await holder.end();
    }
  };
  const iso = (ms: number) => new Date(ms).toISOString();
  const site = (name: string, over: Record<string, unknown> = {}) => ({
    site: name,
    timezone: null,
    first_event: null,
    last_event: null,
    events: 0,
    props: [],
    combinations: [],
    ...over,
  });

  describe('GET /v1/sites', () => {
    const t0 = Math.floor(daysAgo(2) / MINUTE_MS) * MINUTE_MS + 17_250;

    it('lists every site to an admin key, with first and last event and events, counting what is still queued (read-your-writes)', async () => {
      await send([
        { site: 'shop', time: t0, user: 'a', weight: 3 },
        { site: 'shop', time: t0 + 5 * MINUTE_MS, user: 'b' },
      ]);
      await rollAll();
      await withRollerHeld(async () => {
        // Rolled up and queued at once: the answer adds both, in one snapshot.
        await send([
          { site: 'shop', time: t0 - 3 * MINUTE_MS, user: 'c' },
          { site: 'shop', time: t0 + 9 * MINUTE_MS, user: 'a', weight: 2 },
          { site: 'blog', time: t0 + MINUTE_MS, user: 'z' },
        ]);
        expect(await queued()).toBe(3);
        const expected = [
          site('blog', { first_event: iso(t0 + MINUTE_MS), last_event: iso(t0 + MINUTE_MS), events: 1 }),
          site('shop', { first_event: iso(t0 - 3 * MINUTE_MS), last_event: iso(t0 + 9 * MINUTE_MS), events: 7 }),
        ];
        expect((await sites('admin')).data).toEqual(expected);
      });
      await rollAll();
      expect(await queued()).toBe(0);
      expect((await sites('admin')).data).toEqual([
        site('blog', { first_event: iso(t0 + MINUTE_MS), last_event: iso(t0 + MINUTE_MS), events: 1 }),
        site('shop', { first_event: iso(t0 - 3 * MINUTE_MS), last_event: iso(t0 + 9 * MINUTE_MS), events: 7 }),
      ]);
    });

    it('shows an event acknowledged a moment ago in the very next answer, whatever the roller is doing', async () => {
      for (let i = 0; i < 20; i++) {
        await send([{ site: 'shop', time: t0 + i * MINUTE_MS, user: `u${i}` }]);
        const [shop] = (await sites('admin')).data;
        expect(shop).toMatchObject({ site: 'shop', events: i + 1, first_event: iso(t0), last_event: iso(t0 + i * MINUTE_MS) });
      }
    });

    it('lists to a key bound to a site that site only, and that site even before its first event', async () => {
      await send([
        { site: 'shop', time: t0, user: 'a' },
        { site: 'news', time: t0, user: 'a' },
      ]);
      expect((await sites('shopRead')).data).toEqual([site('shop', { first_event: iso(t0), last_event: iso(t0), events: 1 })]);
      expect((await sites('blogRead')).data).toEqual([site('blog')]);
      expect((await t.http.get('/v1/sites').set(as('shopIngest'))).status).toBe(403);
      expect((await t.http.get('/v1/sites')).status).toBe(401);
    });

    it('answers one site at /v1/sites/{site}: 404 unknown_site to an admin key when it does not exist, 403 to a key of another site either way', async () => {
      await withRollerHeld(async () => {
        await send([{ site: 'shop', time: t0, user: 'a' }]);
        const one = await t.http.get('/v1/sites/shop').set(as('admin'));
        expect(one.status).toBe(200);
        expect(one.body).toEqual(site('shop', { first_event: iso(t0), last_event: iso(t0), events: 1 }));
      });
      expect((await t.http.get('/v1/sites/shop').set(as('shopRead'))).body).toMatchObject({ site: 'shop', events: 1 });
      const missing = await t.http.get('/v1/sites/nope').set(as('admin'));
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('unknown_site');
      const other = await t.http.get('/v1/sites/shop').set(as('blogRead'));
      const none = await t.http.get('/v1/sites/nope').set(as('blogRead'));
      expect([other.status, none.status]).toEqual([403, 403]);
      expect(other.body).toEqual(none.body);
      expect((await t.http.get('/v1/sites/blog').set(as('blogRead'))).body).toEqual(site('blog'));
      expect((await t.http.get('/v1/sites/Not_A_Site').set(as('admin'))).status).toBe(400);
      const unknown = await t.http.get('/v1/sites?site=shop').set(as('admin'));
      expect(unknown.body.error.details).toEqual([{ parameter: 'query', message: 'unknown parameter site' }]);
    });
  });

  describe('POST /v1/sites and PATCH /v1/sites/{site}', () => {
    const rollups = async (name: string) =>
      (
        await t.db.sql<
          { dims: string; since: Date }[]
        >`select dims, since from headcount_rollups where site = ${name} order by dims`
      ).map((r) => ({ dims: r.dims, since: r.since.toISOString() }));
    const post = (body: unknown, key = 'admin') =>
      t.http
        .post('/v1/sites')
        .set(as(key))
        .send(body as object);
    const patch = (name: string, body: unknown, key = 'admin') =>
      t.http
        .patch(`/v1/sites/${name}`)
        .set(as(key))
        .send(body as object);

    it('creates a site with its settings, once: 409 when it exists, with events or without', async () => {
      const made = await post({
        site: 'shop',
        timezone: 'Europe/Warsaw',
        props: ['plan'],
        combinations: [['device', 'country']],
      });
      expect(made.status).toBe(201);
      expect(made.headers.location).toBe('/v1/sites/shop');
      expect(made.body).toEqual(
        site('shop', { timezone: 'Europe/Warsaw', props: ['plan'], combinations: [['country', 'device']] }),
      );
      expect((await rollups('shop')).map((r) => r.dims)).toEqual(['country,device', 'props.plan']);
      expect((await sites('admin')).data).toEqual([made.body]);

      const again = await post({ site: 'shop' });
      expect(again.status).toBe(409);
      expect(again.body.error.code).toBe('site_exists');
      await withRollerHeld(async () => {
        await send([{ site: 'blog', time: Date.now(), user: 'a' }]);
        expect((await post({ site: 'blog' })).status).toBe(409); // its first event is still queued
      });
      expect((await post({ site: 'news' })).status).toBe(201);
      expect((await sites('admin')).data.map((s) => s.site)).toEqual(['blog', 'news', 'shop']);
    });

    it('needs an admin key', async () => {
      for (const key of ['shopRead', 'shopIngest']) {
        expect((await post({ site: 'shop' }, key)).status).toBe(403);
        expect((await patch('shop', { timezone: 'UTC' }, key)).status).toBe(403);
      }
      const res = await t.http.post('/v1/sites').send({ site: 'shop' });
      expect(res.status).toBe(401);
      expect(res.body.error.message).toContain('--scope admin)');
      expect(await rollups('shop')).toEqual([]);
    });

    it('sets and clears the time zone, leaving what is not given as it is', async () => {
      await send([{ site: 'shop', time: Date.now(), user: 'a' }]);
      await patch('shop', { props: ['plan'] });
      const set = await patch('shop', { timezone: 'Asia/Kathmandu' });
      expect(set.status).toBe(200);
      expect(set.body).toMatchObject({ site: 'shop', timezone: 'Asia/Kathmandu', props: ['plan'], events: 1 });
      expect((await patch('shop', {})).body).toMatchObject({ timezone: 'Asia/Kathmandu', props: ['plan'] });
      expect((await patch('shop', { timezone: '+05:30' })).body.timezone).toBe('+05:30');
      expect((await patch('shop', { timezone: null })).body).toMatchObject({ timezone: null, props: ['plan'] });
    });

    it('answers 404 unknown_site for a site that does not exist, and changes one whose events are all still queued', async () => {
      const res = await patch('nope', { timezone: 'UTC' });
      expect(res.status).toBe(404);
      expect(res.body.error.code).toBe('unknown_site');
      await withRollerHeld(async () => {
        await send([{ site: 'shop', time: Date.now() - MINUTE_MS, user: 'a', weight: 4 }]);
        expect((await patch('shop', { timezone: 'Asia/Kolkata' })).body).toMatchObject({ timezone: 'Asia/Kolkata', events: 4 });
      });
      await rollAll();
      expect((await sites('admin')).data).toEqual([
        expect.objectContaining({ site: 'shop', timezone: 'Asia/Kolkata', events: 4 }),
      ]);
    });

    it('keeps a declaration that stays (and its since), adds new ones from now, and deletes a removed one with its rollup rows', async () => {
      await post({ site: 'shop', props: ['plan', 'tier'], combinations: [['country', 'device']] });
      await post({ site: 'blog', props: ['plan'] });
      const before = await rollups('shop');
      // Rollup rows of each declaration, and of the same dims of another site.
      const day = new Date(Math.floor(Date.now() / 86_400_000) * 86_400_000);
      for (const [s, dims] of [
        ['shop', 'props.plan'],
        ['shop', 'props.tier'],
        ['shop', 'country,device'],
        ['blog', 'props.plan'],
      ] as const) {
        await t.db.sql`
          insert into dimensions_hourly (site, dims, bucket, kind, vals, events, users)
          values (${s}, ${dims}, ${day}, 'visit', ${['x']}, 1, hll_empty())
        `;
        await t.db.sql`
          insert into dimensions_daily (site, dims, bucket, kind, vals, events, users)
          values (${s}, ${dims}, ${day}, 'visit', ${['x']}, 1, hll_empty())
        `;
        await t.db.sql`insert into headcount_rollup_days (site, dims, day, value_count) values (${s}, ${dims}, ${day}, 1)`;
      }
      const res = await patch('shop', {
        props: ['tier', 'size'],
        combinations: [
          ['device', 'country'],
          ['browser', 'os', 'props.size'],
        ],
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        props: ['size', 'tier'],
        combinations: [
          ['browser', 'os', 'props.size'],
          ['country', 'device'],
        ],
      });
      const after = await rollups('shop');
      expect(after.map((r) => r.dims)).toEqual(['browser,os,props.size', 'country,device', 'props.size', 'props.tier']);
      const since = (list: { dims: string; since: string }[], dims: string) => list.find((r) => r.dims === dims)!.since;
      expect(since(after, 'props.tier')).toBe(since(before, 'props.tier'));
      expect(since(after, 'country,device')).toBe(since(before, 'country,device'));
      expect(Date.parse(since(after, 'props.size'))).toBeGreaterThan(Date.parse(since(before, 'props.tier')));
      for (const table of ['dimensions_hourly', 'dimensions_daily', 'headcount_rollup_days']) {
        const left = await t.db.sql<{ site: string; dims: string }[]>`
          select site, dims from ${t.db.sql(table)} where dims not in ('referrer', 'utm_source', 'utm_medium', 'utm_campaign',
            'utm_content', 'utm_term', 'country', 'device', 'browser', 'os') order by site, dims
        `;
        expect(
          left.map((r) => `${r.site} ${r.dims}`),
          table,
        ).toEqual(['blog props.plan', 'shop country,device', 'shop props.tier']);
      }
      expect((await patch('shop', { props: [], combinations: [] })).body).toMatchObject({ props: [], combinations: [] });
      expect(await rollups('shop')).toEqual([]);
      expect((await rollups('blog')).map((r) => r.dims)).toEqual(['props.plan']);
    });

    it('changes declarations between two passes of the roller: waits for the one in progress, 503 past lock_timeout', async () => {
      await post({ site: 'shop' });
      const holder = createSql(t.db.url, { max: 1 });
      try {
        // A pass in progress holds this lock for its transaction.
        await holder`select pg_advisory_lock(${ROLLER_LOCK})`;
        const waitingForLock = async () =>
          (
            await t.db.sql<{ n: number }[]>`
              select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and wait_event = 'advisory'
            `
          )[0]!.n > 0;
        let settled = false;
        const patching = patch('shop', { props: ['plan'] }).then((res) => {
          settled = true;
          return res;
        });
        expect((await eventually(waitingForLock, true, 5000)).value).toBe(true);
        expect(settled).toBe(false);
        await holder`select pg_advisory_unlock(${ROLLER_LOCK})`;
        expect((await patching).body).toMatchObject({ props: ['plan'] });

        // Held past lock_timeout (DATABASE_TIMEOUT_MS): a retriable 503, and nothing changed.
        await holder`select pg_advisory_lock(${ROLLER_LOCK})`;
        const late = await patch('shop', { props: ['tier'] });
        expect(late.status).toBe(503);
        expect(late.headers['retry-after']).toBeDefined();
      } finally {
        await holder.end();
      }
      expect((await rollups('shop')).map((r) => r.dims)).toEqual(['props.plan']);
    });

    it('refuses bad settings with 400 naming the field, changing nothing', async () => {
      await post({ site: 'shop', props: ['plan'] });
      const tooMany = Array.from({ length: 11 }, (_, i) => `p${i}`);
      const combos = (n: number) => Array.from({ length: n }, (_, i) => ['country', `props.p${i}`]);
      for (const [body, field, message] of [
        [{ props: tooMany }, 'props', /at most 10/],
        [{ props: ['Plan'] }, 'props["0"]', /property name/],
        [{ props: ['a'.repeat(65)] }, 'props["0"]', /at most 64/],
        [{ props: ['plan', 'plan'] }, 'props', /twice/],
        [{ props: 'plan' }, 'props', /list/],
        [{ combinations: combos(11) }, 'combinations', /at most 10/],
        [{ combinations: [['country']] }, 'combinations["0"]', /2 or 3/],
        [{ combinations: [['country', 'device', 'os', 'browser']] }, 'combinations["0"]', /2 or 3/],
        [{ combinations: [['country', 'page']] }, 'combinations["0"]["1"]', /must be one of referrer/],
        [{ combinations: [['kind', 'device']] }, 'combinations["0"]["0"]', /must be one of referrer/],
        [{ combinations: [['country', 'props.Bad']] }, 'combinations["0"]["1"]', /props\.<name>/],
        [{ combinations: [['country', 'country']] }, 'combinations["0"]', /twice/],
        [
          {
            combinations: [
              ['country', 'device'],
              ['device', 'country'],
            ],
          },
          'combinations',
          /same combination twice/,
        ],
        [{ timezone: 'Mars/Olympus' }, 'timezone', /not a time zone of the IANA database/],
        [{ timezone: 'localtime' }, 'timezone', /not a time zone of the IANA database/],
        [{ timezone: '+19:00' }, 'timezone', /offset from -18:00 to \+18:00/],
        [{ timezone: 5 }, 'timezone', /must be a string/],
        [{ colour: 'red' }, 'body', /unknown field colour/],
      ] as const) {
        const res = await patch('shop', body);
        expect(res.status, JSON.stringify(body)).toBe(400);
        expect(res.body.error.code).toBe('invalid_body');
        expect(res.body.error.details, JSON.stringify(body)).toContainEqual({
          parameter: field,
          message: expect.stringMatching(message),
        });
      }
      expect((await post({ site: 'Shop!' })).body.error.details).toContainEqual({
        parameter: 'site',
        message: expect.stringMatching(/site name/),
      });
      expect((await post({})).body.error.details).toContainEqual({
        parameter: 'site',
        message: expect.stringMatching(/required/),
      });
      expect((await sites('admin')).data).toEqual([site('shop', { props: ['plan'] })]);
    });
  });

  describe('reads of an unknown site', () => {
    const today = () => isoDate(Date.now());
    const tomorrow = () => isoDate(Date.now() + 86_400_000);
    const read = (path: '/v1/stats' | '/v1/export', key: string, name: string) =>
      t.http.get(path).query({ site: name, from: today(), to: tomorrow() }).set(as(key));

    it('answer 404 unknown_site to an admin key, and what they always answered to other keys', async () => {
      for (const path of ['/v1/stats', '/v1/export'] as const) {
        const res = await read(path, 'admin', 'nope');
        expect(res.status, path).toBe(404);
        expect(res.body).toEqual({
          error: {
            code: 'unknown_site',
            message: 'there is no site nope: it has no events and was not created (POST /v1/sites)',
          },
        });
        // A key of another site: 403, the same whether the site exists or not.
        const other = await read(path, 'blogRead', 'nope');
        expect(other.status).toBe(403);
        expect(other.body).toEqual((await read(path, 'blogRead', 'shop')).body);
        // Its own site without events: an empty answer, as before.
        expect((await read(path, 'blogRead', 'blog')).status).toBe(200);
      }
      expect((await read('/v1/stats', 'blogRead', 'blog')).body.data).toEqual([expect.objectContaining({ users: 0, events: 0 })]);
    });

    it('know a site from its first event on, queued or rolled up, or from its creation', async () => {
      await withRollerHeld(async () => {
        await send([{ site: 'shop', time: Date.now(), user: 'a' }]);
        expect(await queued()).toBe(1);
        const res = await read('/v1/stats', 'admin', 'shop');
        expect(res.status).toBe(200);
        expect(res.body.data).toEqual([expect.objectContaining({ users: 1, events: 1 })]);
      });
      await rollAll();
      expect((await read('/v1/stats', 'admin', 'shop')).status).toBe(200);
      expect((await read('/v1/export', 'admin', 'shop')).status).toBe(200);
      expect((await t.http.post('/v1/sites').set(as('admin')).send({ site: 'blog' })).status).toBe(201);
      expect((await read('/v1/stats', 'admin', 'blog')).status).toBe(200);
    });
  });

  describe("a site's time zone", () => {
    it('is the default of its stats and exports; a timezone parameter still wins', async () => {
      const date = isoDate(daysAgo(3));
      const midnightKolkata = Date.parse(`${date}T00:00:00+05:30`);
      const previous = isoDate(daysAgo(4));
      // 23:50 and 00:10 local: one on each side of the local midnight, both on the UTC day before.
      await send([
        { site: 'shop', time: midnightKolkata - 10 * MINUTE_MS, user: 'a' },
        { site: 'shop', time: midnightKolkata + 10 * MINUTE_MS, user: 'b' },
      ]);
      await t.http.patch('/v1/sites/shop').set(as('admin')).send({ timezone: 'Asia/Kolkata' });
      const day = { site: 'shop', from: date, to: isoDate(Date.parse(`${date}T00:00:00Z`) + 86_400_000) };
      const local = await t.http.get('/v1/stats').query(day).set(as('shopRead'));
      expect(local.body.meta).toMatchObject({ timezone: 'Asia/Kolkata', from: `${date}T00:00:00+05:30` });
      expect(local.body.data).toEqual([expect.objectContaining({ users: 1, events: 1 })]);
      const utc = await t.http
        .get('/v1/stats')
        .query({ site: 'shop', from: previous, to: date, timezone: 'UTC' })
        .set(as('shopRead'));
      expect(utc.body.meta).toMatchObject({ timezone: 'UTC', from: `${previous}T00:00:00+00:00` });
      expect(utc.body.data).toEqual([expect.objectContaining({ users: 2, events: 2 })]);
      const exported = await t.http.get('/v1/export').query(day).set(as('shopRead'));
      expect(
        exported.text
          .trim()
          .split('\n')
          .map((l) => (JSON.parse(l) as { user: string }).user),
      ).toEqual(['b']);
    });
  });
});
