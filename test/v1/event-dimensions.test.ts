import { describe, expect, it } from 'vitest';
import { PROPS_MAX_KEYS, STANDARD_DIMENSIONS } from '../../src/dimensions.js';
import { insertEvents } from '../../src/ingest/writer.js';
import { DAY_MS, HOUR_MS } from '../../src/time.js';
import { referrerHost, textProblem } from '../../src/v1/events/dimensions.js';
import { startTestApp, type TestApp, useTestApp } from '../helpers/app.js';
import { describeEachModeWithCitus, first } from '../helpers/db.js';
import { daysAgo, isoDate } from '../helpers/time.js';

describe('referrerHost', () => {
  it('takes the host of a URL or a bare host: lowercase, no port, no leading www.', () => {
    const cases: [string, string | undefined][] = [
      ['https://www.Example.com:8443/a/b?q=1#top', 'example.com'],
      ['http://news.ycombinator.com/item?id=1', 'news.ycombinator.com'],
      ['example.com', 'example.com'],
      ['WWW.Example.COM', 'example.com'],
      ['www.example.com:3000/path', 'example.com'],
      ['localhost:8080', 'localhost'],
      ['//www.example.org/x', 'example.org'],
      ['https://user:secret@Host.example/', 'host.example'],
      ['android-app://com.Google.android.gm/', 'com.google.android.gm'],
      ['https://bücher.de/', 'xn--bcher-kva.de'],
      ['http://[::1]:8080/', '[::1]'],
      ['http://192.168.0.1/', '192.168.0.1'],
      ['https://www.wwwexample.com', 'wwwexample.com'],
      ['www.', 'www.'],
      // No host: refused by the schema.
      ['mailto:someone@example.com', undefined],
      ['about:blank', undefined],
      ['file:///etc/passwd', undefined],
      ['not a host', undefined],
      ['https://', undefined],
    ];
    expect(cases.map(([input]) => [input, referrerHost(input)])).toEqual(cases);
  });
});

describe('textProblem', () => {
  it('names NUL, control characters and lone surrogates, and passes any other text', () => {
    expect(textProblem('a\0b')).toMatch(/NUL/);
    expect(textProblem('a\tb')).toMatch(/control characters.*U\+0009/);
    expect(textProblem('a\u0085b')).toMatch(/U\+0085/);
    expect(textProblem('a\ud800b')).toMatch(/lone surrogate \(U\+D800\)/);
    expect(textProblem('a\udc00')).toMatch(/lone surrogate/);
    for (const fine of ['', 'Grüße, 世界 😀', 'a "quoted" value', '=1+2', ' spaced ']) expect(textProblem(fine)).toBeUndefined();
  });
});

const EVERY_FIELD = {
  referrer: 'https://www.Google.com:443/search?q=headcount',
  utm_source: 'Newsletter',
  utm_medium: 'e-mail',
  utm_campaign: 'Black Friday 2026',
  utm_content: 'header "link"',
  utm_term: 'analytics, distinct users',
  country: 'de',
  device: 'Mobile',
  browser: 'Firefox',
  os: 'Android',
  source: 'Spring mailing',
  props: { plan: 'pro', 'ab.test': 'b', locale_2: 'de-DE' },
};

/** EVERY_FIELD as stored. */
const EVERY_FIELD_STORED = {
  referrer: 'google.com',
  utm_source: 'Newsletter',
  utm_medium: 'e-mail',
  utm_campaign: 'Black Friday 2026',
  utm_content: 'header "link"',
  utm_term: 'analytics, distinct users',
  country: 'DE',
  device: 'mobile',
  browser: 'Firefox',
  os: 'Android',
  source: 'Spring mailing',
  props: { plan: 'pro', 'ab.test': 'b', locale_2: 'de-DE' },
};

/** The columns of `events` these tests read back, in SQL, as stored. */
const stored = async (t: TestApp, where = t.db.sql`true`) =>
  t.db.sql`
    select user_id, page, referrer, utm_source, utm_medium, utm_campaign, utm_content, utm_term, country, device, browser, os, source,
           props
    from events
    where ${where}
    order by time, user_id
  `;

describeEachModeWithCitus('POST /v1/events: dimensions and props', (mode) => {
  const t = useTestApp(mode);
  const at = daysAgo(2) + 5 * HOUR_MS;
  const iso = (ms: number) => new Date(ms).toISOString();
  const send = (events: object[]) => t.http.post('/v1/events').send({ events });

  it('stores every field as sent or normalized: referrer as its host, country upper, device lower, props as an object', async () => {
    const res = await send([{ user: 'anna', kind: 'pageview', page: '/p', time: iso(at), ...EVERY_FIELD }]);
    expect(res.body).toEqual({ accepted: 1, duplicates: 0, rejected: [] });
    expect(await stored(t)).toEqual([{ user_id: 'anna', page: '/p', ...EVERY_FIELD_STORED }]);
  });

  it('stores "" and null as absent (null), drops a property whose value is "", and stores {} as no props', async () => {
    const empty = Object.fromEntries(STANDARD_DIMENSIONS.map((d) => [d, '']));
    const nulls = Object.fromEntries(STANDARD_DIMENSIONS.map((d) => [d, null]));
    const res = await send([
      { user: 'a', kind: 'pageview', time: iso(at), ...empty, props: { plan: '', seats: '3' } },
      { user: 'b', kind: 'pageview', time: iso(at), ...nulls, props: null, id: null },
      { user: 'c', kind: 'pageview', time: iso(at), props: {} },
      { user: 'd', kind: 'pageview', time: iso(at), props: { plan: '' } },
    ]);
    expect(res.body).toEqual({ accepted: 4, duplicates: 0, rejected: [] });
    const rows = await stored(t);
    const none = Object.fromEntries([...STANDARD_DIMENSIONS, 'props'].map((d) => [d, null]));
    expect(rows).toEqual([
      { user_id: 'a', page: '', ...none, props: { seats: '3' } },
      { user_id: 'b', page: '', ...none },
      { user_id: 'c', page: '', ...none },
      { user_id: 'd', page: '', ...none },
    ]);
    expect(first(await t.db.sql`select count(*)::int as n from events where id is not null`).n).toBe(0);
  });

  it('takes every value up to its limit whole, and refuses one character more instead of cutting it', async () => {
    const props = Object.fromEntries(
      Array.from({ length: PROPS_MAX_KEYS }, (_, i) => [
        `p${i}`.padEnd(i === 0 ? 64 : 2, 'x'),
        (i === 1 ? '😀' : 'v').repeat(500),
      ]),
    );
    const longest = {
      referrer: `https://${'a'.repeat(60)}.example/${'p'.repeat(2048 - 77)}`,
      utm_source: 's'.repeat(500),
      utm_medium: 'm'.repeat(500),
      utm_campaign: 'c'.repeat(500),
      utm_content: 'é'.repeat(500),
      // Characters are code points, as PostgreSQL counts them: 1,000 UTF-16 units.
      utm_term: '😀'.repeat(500),
      device: `d${'-'.repeat(31)}`,
      browser: 'b'.repeat(100),
      os: 'o'.repeat(100),
      source: 'ś'.repeat(500),
      props,
    };
    expect(longest.referrer).toHaveLength(2048);
    const res = await send([
      { user: 'whole', kind: 'view', time: iso(at), page: '/'.repeat(2048), ...longest },
      ...Object.entries(longest)
        .filter(([name]) => name !== 'props')
        .map(([name, value]) => ({ user: 'over', kind: 'view', time: iso(at), [name]: `${value as string}x` })),
      { user: 'over', kind: 'view', time: iso(at), page: '/'.repeat(2049) },
      { user: 'over', kind: 'view', time: iso(at), props: { ...props, extra: 'x' } },
      { user: 'over', kind: 'view', time: iso(at), props: { big: '😀'.repeat(501) } },
      { user: 'over', kind: 'view', time: iso(at), props: { [`p${'x'.repeat(64)}`]: 'v' } },
    ]);
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(1);
    expect(
      (res.body.rejected as { index: number; code: string; field: string }[]).map((r) => [r.index, r.code, r.field]),
    ).toEqual([
      [1, 'out_of_range', 'referrer'],
      [2, 'out_of_range', 'utm_source'],
      [3, 'out_of_range', 'utm_medium'],
      [4, 'out_of_range', 'utm_campaign'],
      [5, 'out_of_range', 'utm_content'],
      [6, 'out_of_range', 'utm_term'],
      [7, 'out_of_range', 'device'],
      [8, 'out_of_range', 'browser'],
      [9, 'out_of_range', 'os'],
      [10, 'out_of_range', 'source'],
      [11, 'out_of_range', 'page'],
      [12, 'out_of_range', 'props'],
      [13, 'out_of_range', 'props.big'],
      [14, 'invalid_format', `props.p${'x'.repeat(63)}…`],
    ]);
    const [row] = await t.db.sql`
      select length(page) as page, length(utm_source) as s, utm_content, utm_term, length(browser) as b, length(os) as o, device, source,
             referrer, (select count(*)::int from jsonb_object_keys(props)) as keys, props
      from events
    `;
    expect(row).toEqual({
      page: 2048,
      s: 500,
      utm_content: longest.utm_content,
      utm_term: longest.utm_term,
      b: 100,
      o: 100,
      device: longest.device,
      source: longest.source,
      referrer: `${'a'.repeat(60)}.example`,
      keys: 30,
      props,
    });
  });

  it('refuses each bad value with the event’s own rejection, naming the field, and stores the rest of the batch', async () => {
    const bad: [object, string, string, RegExp][] = [
      [{ referrer: 'mailto:someone@example.com' }, 'invalid_format', 'referrer', /^referrer must be a URL with a host/],
      [{ referrer: 'not a host' }, 'invalid_format', 'referrer', /^referrer must be a URL with a host/],
      [{ referrer: 42 }, 'invalid_type', 'referrer', /^referrer must be a string$/],
      [{ referrer: 'https://example.com/\tx' }, 'invalid_value', 'referrer', /control characters.*U\+0009/],
      [{ utm_source: 'a\u0000b' }, 'invalid_value', 'utm_source', /^utm_source must not contain NUL/],
      [{ utm_medium: 'line\nbreak' }, 'invalid_value', 'utm_medium', /^utm_medium must not contain control characters/],
      [{ utm_campaign: ['a'] }, 'invalid_type', 'utm_campaign', /must be a string/],
      [{ utm_content: 'half \ud83d' }, 'invalid_value', 'utm_content', /lone surrogate/],
      [{ utm_term: true }, 'invalid_type', 'utm_term', /must be a string/],
      [{ country: 'DEU' }, 'out_of_range', 'country', /at most 2 characters/],
      [{ country: 'D' }, 'invalid_format', 'country', /^country must be an ISO 3166-1 alpha-2 country code/],
      [{ country: 'D1' }, 'invalid_format', 'country', /two letters/],
      [{ country: 'ÄÖ' }, 'invalid_format', 'country', /two letters/],
      [{ device: 'smart tv' }, 'invalid_format', 'device', /^device must be a device type/],
      [{ device: '1phone' }, 'invalid_format', 'device', /device type/],
      [{ browser: 'Fire\u007ffox' }, 'invalid_value', 'browser', /U\+007F/],
      [{ os: 7 }, 'invalid_type', 'os', /must be a string/],
      [{ props: 'plan=pro' }, 'invalid_type', 'props', /^props must be an object of string values$/],
      [{ props: ['pro'] }, 'invalid_type', 'props', /object of string values/],
      [{ props: { seats: 3 } }, 'invalid_type', 'props.seats', /^props\.seats must be a string$/],
      [{ props: { paid: true } }, 'invalid_type', 'props.paid', /must be a string/],
      [{ props: { nested: { a: 'b' } } }, 'invalid_type', 'props.nested', /must be a string/],
      [{ props: { gone: null } }, 'invalid_type', 'props.gone', /must be a string/],
      [{ props: { Plan: 'pro' } }, 'invalid_format', 'props.Plan', /^props\.Plan must be a property name/],
      [{ props: { '1st': 'x' } }, 'invalid_format', 'props.1st', /property name/],
      [{ props: { 'a-b': 'x' } }, 'invalid_format', 'props.a-b', /property name/],
      [{ props: { note: 'a\u0000b' } }, 'invalid_value', 'props.note', /^props\.note must not contain NUL/],
      [{ props: { note: 'a\rb' } }, 'invalid_value', 'props.note', /control characters/],
      [
        { props: Object.fromEntries(Array.from({ length: PROPS_MAX_KEYS + 1 }, (_, i) => [`k${i}`, 'v'])) },
        'out_of_range',
        'props',
        /^props must hold at most 30 properties$/,
      ],
      [{ page: '/a\u0000' }, 'invalid_value', 'page', /^page must not contain NUL/],
      [{ page: '/\udfff' }, 'invalid_value', 'page', /lone surrogate/],
      // As UTF-8 both would be U+FFFD: two users counted as one.
      [{ user: 'u\ud800' }, 'invalid_value', 'user', /^user must be valid Unicode: it holds a lone surrogate$/],
      [{ user: 'u\udc00' }, 'invalid_value', 'user', /lone surrogate/],
      [{ id: 'e\udbff' }, 'invalid_value', 'id', /lone surrogate/],
      [{ region: 'Bavaria' }, 'unknown_field', 'region', /^region is not a field of an event$/],
      // A field of the wrong type is not a missing one.
      [{ user: 42 }, 'invalid_type', 'user', /^user must be a string$/],
      [{ page: 5 }, 'invalid_type', 'page', /^page must be a string$/],
      [{ kind: undefined }, 'missing', 'kind', /^kind is required$/],
    ];
    const good = { user: 'good', kind: 'view', time: iso(at), ...EVERY_FIELD };
    const res = await send([good, ...bad.map(([fields]) => ({ user: 'bad', kind: 'view', time: iso(at), ...fields }))]);
    expect(res.status).toBe(200);
    expect(res.body.accepted).toBe(1);
    const rejected = res.body.rejected as { index: number; code: string; field: string; message: string }[];
    expect(rejected.map((r) => [r.index, r.code, r.field])).toEqual(bad.map(([, code, field], i) => [i + 1, code, field]));
    for (const [i, [, , , message]] of bad.entries()) expect(rejected[i]!.message).toMatch(message);
    expect((await stored(t)).map((r) => r.user_id)).toEqual(['good']);
  });

  it('answers a batch whose every event is invalid with 400 invalid_events, each rejection naming its field', async () => {
    const res = await send([
      { user: 'a', kind: 'view', country: 'Germany' },
      { user: 'b', kind: 'view', props: { seats: 3 } },
    ]);
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: {
        code: 'invalid_events',
        message: 'every event is invalid; the first: event 0: country must be at most 2 characters',
        details: [
          { index: 0, code: 'out_of_range', message: 'country must be at most 2 characters', field: 'country' },
          { index: 1, code: 'invalid_type', message: 'props.seats must be a string', field: 'props.seats' },
        ],
      },
    });
    expect(await stored(t)).toEqual([]);
  });

  it('stores null dimensions for the seed APIs, also when a batch mixes them with events that have dimensions', async () => {
    expect((await t.http.get('/collect').query({ cid: 'seed-user' })).status).toBe(200);
    const none = Object.fromEntries([...STANDARD_DIMENSIONS, 'props'].map((d) => [d, null]));
    expect(await stored(t)).toEqual([{ user_id: 'seed-user', page: '', ...none }]);
    // One statement for rows with and without dimensions, as a flush of both makes it.
    await insertEvents(
      t.db.sql,
      [
        { site: 'mixed', timeMs: at, kind: 'collect', userId: 'plain', page: '', weight: 1 },
        {
          site: 'mixed',
          timeMs: at,
          kind: 'view',
          userId: 'rich',
          page: '',
          weight: 1,
          dimensions: { country: 'PL', props: { a: 'b' } },
        },
        { site: 'mixed', timeMs: at, kind: 'collect', userId: 'plain2', page: '', weight: 1, id: 'x' },
      ],
      { callInserted: mode === 'citus' },
    );
    expect(await stored(t, t.db.sql`site = 'mixed'`)).toEqual([
      { user_id: 'plain', page: '', ...none },
      { user_id: 'plain2', page: '', ...none },
      { user_id: 'rich', page: '', ...none, country: 'PL', props: { a: 'b' } },
    ]);
    // One row, one dimension: every other column's text is empty (no value at all).
    await insertEvents(
      t.db.sql,
      [{ site: 'one', timeMs: at, kind: 'view', userId: 'u', page: '', weight: 1, dimensions: { os: 'iOS' } }],
      { callInserted: mode === 'citus' },
    );
    expect(await stored(t, t.db.sql`site = 'one'`)).toEqual([{ user_id: 'u', page: '', ...none, os: 'iOS' }]);
    // The writer's separator inside a value (which POST /v1/events refuses) fails the
    // statement whole instead of shifting the values of the rows after it.
    const shifted = insertEvents(
      t.db.sql,
      [
        { site: 'sep', timeMs: at, kind: 'view', userId: 'a', page: '', weight: 1, dimensions: { utm_source: 'x\u001fy' } },
        { site: 'sep', timeMs: at, kind: 'view', userId: 'b', page: '', weight: 1, dimensions: { utm_source: 'z' } },
      ],
      { callInserted: mode === 'citus' },
    );
    // A row of nulls: a not-null violation, or in citus mode the null distribution column.
    await expect(Promise.resolve(shifted)).rejects.toMatchObject({ code: mode === 'citus' ? '22004' : '23502' });
    expect(await stored(t, t.db.sql`site = 'sep'`)).toEqual([]);
  });

  it('keeps its list of standard dimensions in agreement with the SQL one, headcount_dimensions()', async () => {
    const [row] = await t.db.sql`select headcount_dimensions() as names`;
    expect(row!.names).toEqual([...STANDARD_DIMENSIONS]);
  });
});

describeEachModeWithCitus('GET /v1/export with dimensions', (mode) => {
  const t = useTestApp(mode);
  const day = daysAgo(4);
  const range = { from: isoDate(day), to: isoDate(day + DAY_MS) };
  const exported = async (app: TestApp, format: 'ndjson' | 'csv') =>
    (
      await app.http
        .get('/v1/export')
        .query({ ...range, format })
        .buffer(true)
        .parse((res, done) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => done(null, text));
        })
    ).body as string;

  it('writes every field, and what it writes goes back through POST /v1/events as it is: a fresh database exports the same', async () => {
    const time = (minutes: number) => new Date(day + 3 * HOUR_MS + minutes * 60_000).toISOString();
    const events = [
      { user: 'anna', kind: 'pageview', page: '/', time: time(0), id: 'e1', ...EVERY_FIELD },
      { user: 'piotr', kind: 'signup', time: time(1), weight: 2, country: 'pl', props: { plan: 'free' } },
      { user: 'li', kind: 'pageview', page: '/pricing', time: time(2), referrer: 'news.example', device: 'tablet' },
      { user: 'zoe', kind: 'click', time: time(3) },
      {
        user: '=cmd',
        kind: 'pageview',
        time: time(4),
        utm_source: '=HYPERLINK("x")',
        browser: '@b',
        props: { q: '"quoted", comma' },
      },
    ];
    expect((await t.http.post('/v1/events').send({ events })).body).toMatchObject({ accepted: 5, rejected: [] });
    const ndjson = await exported(t, 'ndjson');
    const lines = ndjson
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toEqual({
      time: time(0),
      site: 'default',
      kind: 'pageview',
      user: 'anna',
      page: '/',
      weight: 1,
      id: 'e1',
      ...EVERY_FIELD_STORED,
    });
    // Only the dimensions an event has; the fields every event has always.
    expect(lines[1]).toEqual({
      time: time(1),
      site: 'default',
      kind: 'signup',
      user: 'piotr',
      page: '',
      weight: 2,
      id: null,
      country: 'PL',
      props: { plan: 'free' },
    });
    expect(lines[3]).toEqual({ time: time(3), site: 'default', kind: 'click', user: 'zoe', page: '', weight: 1, id: null });
    // The stored values, in the order of the columns.
    expect(Object.keys(lines[0]!)).toEqual([
      'time',
      'site',
      'kind',
      'user',
      'page',
      'weight',
      'id',
      ...STANDARD_DIMENSIONS,
      'props',
    ]);

    // Sent back as they are: to this database, the one with an id is a duplicate (the
    // others have none); to a fresh one, everything is stored and exports the same.
    const again = await t.http.post('/v1/events').send({ events: lines });
    expect(again.body).toEqual({ accepted: 4, duplicates: 1, rejected: [] });
    const fresh = await startTestApp(mode);
    try {
      const imported = await fresh.http.post('/v1/events').send({ events: lines });
      expect(imported.body).toEqual({ accepted: 5, duplicates: 0, rejected: [] });
      expect(await exported(fresh, 'ndjson')).toBe(ndjson);
      const csv = await exported(t, 'csv');
      const freshCsv = await exported(fresh, 'csv');
      // This database has each event without an id twice now.
      const unique = [...new Set(csv.split('\r\n'))].join('\r\n');
      expect(freshCsv).toBe(unique);
      expect(fresh.openApiViolations).toEqual([]);
    } finally {
      await fresh.close();
    }
  });

  it('writes the dimensions and props as CSV columns, quoted, formulas neutralised, empty when absent', async () => {
    const time = new Date(day + 3 * HOUR_MS).toISOString();
    await t.http.post('/v1/events').send({
      events: [
        { user: 'a', kind: 'view', time, ...EVERY_FIELD },
        { user: 'b', kind: 'view', time, utm_source: '=HYPERLINK("x")', browser: '-b', props: { q: '"x", y' } },
        { user: 'c', kind: 'view', time },
      ],
    });
    const lines = (await exported(t, 'csv')).split('\r\n');
    expect(lines[0]).toBe(
      'time,site,kind,user,page,weight,id,referrer,utm_source,utm_medium,utm_campaign,utm_content,utm_term,country,device,browser,os,source,props',
    );
    expect(lines.slice(1)).toEqual([
      `${time},default,view,"a","",1,,"google.com","Newsletter","e-mail","Black Friday 2026","header ""link""",` +
        `"analytics, distinct users","DE","mobile","Firefox","Android","Spring mailing","{""plan"": ""pro"", ""ab.test"": ""b"", ""locale_2"": ""de-DE""}"`,
      // A utm_source and no source sent: the source is derived from it (as it is, not a known name).
      `${time},default,view,"b","",1,,,"'=HYPERLINK(""x"")",,,,,,,"'-b",,"'=HYPERLINK(""x"")","{""q"": ""\\""x\\"", y""}"`,
      `${time},default,view,"c","",1,,,,,,,,,,,,,`,
      '',
    ]);
  });
});
