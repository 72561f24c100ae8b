import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/time.js';
import { clientAddress, parseTrustProxy } from '../../src/tracker/address.js';
import { agentOf, countryOf, deviceOfWidth, isBot } from '../../src/tracker/enrich.js';
import { DIRECT, sourceOf } from '../../src/tracker/sources.js';
import { DEFAULT_TRACKER, type TrackerSettings } from '../../src/tracker/settings.js';
import { visitorId } from '../../src/tracker/visitor.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { describeEachModeWithCitus, type TestDatabase } from '../helpers/db.js';

const UA = {
  chromeWindows:
    'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
  firefoxLinux: 'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0',
  safariIphone:
    'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  safariIpad:
    'Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  chromeAndroid:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
  edgeMac:
    'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0',
  googlebot: 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
  curl: 'curl/8.5.0',
};

describe('agentOf and isBot', () => {
  it('names browser, OS and device class of known user agents', () => {
    expect(agentOf(UA.chromeWindows)).toEqual({ browser: 'Chrome', os: 'Windows', device: 'desktop' });
    expect(agentOf(UA.firefoxLinux)).toEqual({ browser: 'Firefox', os: 'Linux', device: 'desktop' });
    expect(agentOf(UA.safariIphone)).toEqual({ browser: 'Safari', os: 'iOS', device: 'mobile' });
    expect(agentOf(UA.safariIpad)).toEqual({ browser: 'Safari', os: 'iOS', device: 'tablet' });
    expect(agentOf(UA.chromeAndroid)).toEqual({ browser: 'Chrome', os: 'Android', device: 'mobile' });
    expect(agentOf(UA.edgeMac)).toEqual({ browser: 'Microsoft Edge', os: 'macOS', device: 'desktop' });
    expect(agentOf('')).toEqual({});
  });

  it('tells bots, crawlers and HTTP libraries from browsers', () => {
    expect([UA.googlebot, UA.curl, 'Mozilla/5.0 (X11; Linux x86_64) HeadlessChrome/131.0.0.0'].map(isBot)).toEqual([
      true,
      true,
      true,
    ]);
    expect([UA.chromeWindows, UA.firefoxLinux, UA.safariIphone, UA.chromeAndroid].map(isBot)).toEqual([
      false,
      false,
      false,
      false,
    ]);
  });

  it('takes the device class from the screen width', () => {
    expect([320, 575, 576, 991, 992, 2560].map(deviceOfWidth)).toEqual([
      'mobile',
      'mobile',
      'tablet',
      'tablet',
      'desktop',
      'desktop',
    ]);
  });
});

describe('countryOf', () => {
  it('reads the country of addresses of the registries themselves and of well-known resolvers', () => {
    // RIPE NCC, APNIC, AFRINIC, LACNIC and ARIN's own networks, and two public resolvers.
    const cases: [string, string | undefined][] = [
      ['193.0.6.139', 'NL'],
      ['2001:67c:2e8::1', 'NL'],
      ['202.12.29.1', 'AU'],
      ['196.216.2.1', 'ZA'],
      ['200.3.14.10', 'UY'],
      ['8.8.8.8', 'US'],
      ['80.67.169.12', 'FR'],
      // Private, loopback, documentation: no country.
      ['127.0.0.1', undefined],
      ['10.1.2.3', undefined],
      ['::1', undefined],
      ['not an address', undefined],
    ];
    expect(cases.map(([ip]) => [ip, countryOf(ip)])).toEqual(cases);
  });
});

describe('sourceOf', () => {
  it('names known referrers and utm_source values, utm_source first, Direct / None without either', () => {
    const cases: [string | undefined, string | undefined, string][] = [
      [undefined, 'google.com', 'Google'],
      [undefined, 'google.co.uk', 'Google'],
      [undefined, 'google.de', 'Google'],
      [undefined, 'news.ycombinator.com', 'Hacker News'],
      [undefined, 'm.facebook.com', 'Facebook'],
      [undefined, 't.co', 'Twitter'],
      [undefined, 'old.reddit.com', 'Reddit'],
      [undefined, 'com.google.android.gm', 'Google'],
      [undefined, 'blog.example.org', 'blog.example.org'],
      [undefined, 'notgoogle.com', 'notgoogle.com'],
      [undefined, 'google.com.au', 'Google'],
      [undefined, 'yahoo.co.jp', 'Yahoo'],
      [undefined, 'mail.google.com', 'Google'],
      [undefined, 'duckduckgo.com', 'DuckDuckGo'],
      [undefined, 'lobste.rs', 'Lobsters'],
      [undefined, 'l.instagram.com', 'Instagram'],
      [undefined, 'youtu.be', 'YouTube'],
      [undefined, 'x.com', 'Twitter'],
      [undefined, 'search.brave.com', 'Brave'],
      [undefined, 'brave.com', 'brave.com'],
      [undefined, 'ycombinator.com', 'ycombinator.com'],
      ['Google', undefined, 'Google'],
      ['hn', 'google.com', 'Hacker News'],
      ['Twitter.com', undefined, 'Twitter'],
      ['Spring-Mailing', 'news.ycombinator.com', 'Spring-Mailing'],
      ['newsletter', 'google.com', 'Newsletter'],
      ['HN', undefined, 'Hacker News'],
      ['spring-mailing', 'google.com', 'spring-mailing'],
      [undefined, undefined, DIRECT],
    ];
    expect(cases.map(([utm, host]) => [utm, host, sourceOf(utm, host)])).toEqual(cases);
  });
});

describe('clientAddress', () => {
  const proxies = parseTrustProxy('10.0.0.1, 10.0.0.2');
  it('is the socket peer unless the peer is a trusted proxy', () => {
    expect(clientAddress('198.51.100.7', '203.0.113.9', proxies)).toBe('198.51.100.7');
    expect(clientAddress('198.51.100.7', '203.0.113.9', new Set())).toBe('198.51.100.7');
    expect(clientAddress('::ffff:198.51.100.7', undefined, proxies)).toBe('198.51.100.7');
  });
  it('reads X-Forwarded-For from the right, past the trusted proxies: a client cannot forge the address', () => {
    expect(clientAddress('10.0.0.1', '203.0.113.9', proxies)).toBe('203.0.113.9');
    expect(clientAddress('10.0.0.1', '1.2.3.4, 203.0.113.9', proxies)).toBe('203.0.113.9');
    expect(clientAddress('10.0.0.1', '203.0.113.9, 10.0.0.2', proxies)).toBe('203.0.113.9');
    expect(clientAddress('10.0.0.1', 'garbage, 10.0.0.2', proxies)).toBe('10.0.0.2');
    expect(clientAddress('10.0.0.1', '', proxies)).toBe('10.0.0.1');
  });
  it('refuses a TRUST_PROXY that is not a list of addresses', () => {
    expect(() => parseTrustProxy('10.0.0.1, proxy.local')).toThrow(/not an IP address: "proxy.local"/);
    expect([...parseTrustProxy(undefined)]).toEqual([]);
  });
});

describe('visitorId', () => {
  it('is 16 bytes of base64url, and differs with each of salt, site, address and user agent', () => {
    const salt = Buffer.alloc(32, 1);
    const id = visitorId(salt, 'shop', '198.51.100.7', UA.firefoxLinux);
    expect(id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(visitorId(Buffer.alloc(32, 1), 'shop', '198.51.100.7', UA.firefoxLinux)).toBe(id);
    const others = [
      visitorId(Buffer.alloc(32, 2), 'shop', '198.51.100.7', UA.firefoxLinux),
      visitorId(salt, 'blog', '198.51.100.7', UA.firefoxLinux),
      visitorId(salt, 'shop', '198.51.100.8', UA.firefoxLinux),
      visitorId(salt, 'shop', '198.51.100.7', UA.chromeWindows),
    ];
    expect(new Set([id, ...others]).size).toBe(5);
  });
});

/** What the tracker sends: no user, a screen width, text/plain. */
const beacon = (event: object = {}) =>
  JSON.stringify({ events: [{ kind: 'pageview', page: '/', screen_width: 1440, ...event }] });

describeEachModeWithCitus('the collector: visitor ids and enrichment', (mode) => {
  const apps: TestApp[] = [];
  let clock = Date.now();
  const start = async (tracker: Partial<TrackerSettings> = {}, shared?: TestDatabase): Promise<TestApp> => {
    const app = await startTestApp(mode, {}, shared, {
      v1Auth: 'none',
      tracker: { ...DEFAULT_TRACKER, ...tracker },
      now: () => clock,
    });
    apps.push(app);
    return app;
  };
  let t: TestApp;
  beforeAll(async () => {
    t = await start();
  });
  afterEach(async () => {
    clock = Date.now();
    for (const app of apps) expect(app.openApiViolations.splice(0)).toEqual([]);
    await t.db.reset();
  });
  afterAll(async () => {
    for (const app of apps.reverse()) await app.close();
  });

  const track = (app: TestApp, ua: string, event: object = {}, xff?: string) => {
    const req = app.http.post('/v1/events').set('Content-Type', 'text/plain;charset=UTF-8').set('User-Agent', ua);
    if (xff) req.set('X-Forwarded-For', xff);
    return req.send(beacon(event));
  };
  const rows = (app: TestApp) =>
    app.db.sql<
      {
        user_id: string;
        site: string;
        country: string | null;
        device: string | null;
        browser: string | null;
        os: string | null;
        referrer: string | null;
      }[]
    >`
      select user_id, site, country, device, browser, os, referrer from events order by time, user_id
    `;

  it('derives the visitor id of an event without user (text/plain, as a beacon) and adds browser, os and device', async () => {
    expect((await track(t, UA.firefoxLinux, { referrer: 'https://news.ycombinator.com/item?id=1' })).body).toEqual({
      accepted: 1,
      duplicates: 0,
      rejected: [],
    });
    await track(t, UA.firefoxLinux, { page: '/pricing', screen_width: 390 });
    await track(t, UA.chromeWindows);
    const stored = await rows(t);
    expect(stored).toHaveLength(3);
    const firefox = stored.filter((r) => r.browser === 'Firefox');
    expect(firefox.map((r) => [r.device, r.os, r.referrer])).toEqual([
      ['desktop', 'Linux', 'news.ycombinator.com'],
      ['mobile', 'Linux', null],
    ]);
    // Same address and user agent the same day: one visitor; another browser: another.
    expect(firefox[0]!.user_id).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(firefox[1]!.user_id).toBe(firefox[0]!.user_id);
    expect(stored.find((r) => r.browser === 'Chrome')!.user_id).not.toBe(firefox[0]!.user_id);
    // Supertest's loopback address has no country.
    expect(stored.map((r) => r.country)).toEqual([null, null, null]);
  });

  it('keeps what the event carries: a user, and any dimension the client sent', async () => {
    await track(t, UA.firefoxLinux, { user: 'anna', browser: 'Own', device: 'tv' });
    await track(t, UA.firefoxLinux, { browser: 'Own', device: 'tv', os: 'Plan 9' });
    expect((await rows(t)).map((r) => [r.user_id === 'anna', r.browser, r.device, r.os])).toEqual([
      [true, 'Own', 'tv', null],
      [false, 'Own', 'tv', 'Plan 9'],
    ]);
  });

  it('drops the events of bots (without user) and counts them in headcount_bots_dropped_total', async () => {
    const res = await t.http
      .post('/v1/events')
      .set('Content-Type', 'text/plain')
      .set('User-Agent', UA.googlebot)
      .send(
        JSON.stringify({ events: [{ kind: 'pageview' }, { kind: 'pageview', page: '/a' }, { kind: 'x', user: 'server-side' }] }),
      );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ accepted: 1, duplicates: 0, rejected: [], bots: 2 });
    expect((await rows(t)).map((r) => r.user_id)).toEqual(['server-side']);
    const onlyBots = await track(t, UA.googlebot);
    expect(onlyBots.body).toEqual({ accepted: 0, duplicates: 0, rejected: [], bots: 1 });
    const metrics = (await t.http.get('/metrics')).text;
    expect(metrics).toMatch(/^headcount_bots_dropped_total 3$/m);
  });

  it('reads the client address from X-Forwarded-For only when TRUST_PROXY names the peer, and the country from it', async () => {
    await track(t, UA.firefoxLinux, {}, '8.8.8.8');
    expect((await rows(t)).map((r) => r.country)).toEqual([null]);
    await t.db.reset();

    const behindProxy = await start({ trustProxy: parseTrustProxy('127.0.0.1, ::1') }, t.db);
    await track(behindProxy, UA.firefoxLinux, {}, '8.8.8.8');
    await track(behindProxy, UA.firefoxLinux, {}, '193.0.6.139');
    await track(behindProxy, UA.firefoxLinux, { country: 'de' }, '193.0.6.139');
    const stored = await rows(behindProxy);
    expect(stored.map((r) => r.country).sort()).toEqual(['DE', 'NL', 'US']);
    // Two addresses: two visitors, the same one for both events of 193.0.6.139.
    expect(new Set(stored.map((r) => r.user_id)).size).toBe(2);

    const noCountry = await start({ trustProxy: parseTrustProxy('127.0.0.1, ::1'), country: false }, t.db);
    await t.db.reset();
    await track(noCountry, UA.firefoxLinux, {}, '8.8.8.8');
    await track(noCountry, UA.firefoxLinux, { country: 'fr' }, '8.8.8.8');
    expect((await rows(noCountry)).map((r) => r.country).sort()).toEqual(['FR', null]);
  });

  it('stores neither the client address nor the user agent anywhere in the database', async () => {
    const behindProxy = await start({ trustProxy: parseTrustProxy('127.0.0.1, ::1') }, t.db);
    const ua = `${UA.chromeAndroid} Marker/7.7.7`;
    for (let i = 0; i < 3; i++) expect((await track(behindProxy, ua, { page: `/p${i}` }, '203.0.113.77')).status).toBe(200);
    expect((await rows(t)).map((r) => [r.browser, r.os, r.device])).toEqual(Array(3).fill(['Chrome', 'Android', 'desktop']));
    const tables = await t.db.sql<{ name: string }[]>`
      select format('%I.%I', n.nspname, c.relname) as name
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where c.relkind = 'r'
        and n.nspname not in ('pg_catalog', 'information_schema')
        and n.nspname not like 'pg\_%'
        and has_table_privilege(c.oid, 'select')
    `;
    expect(tables.length).toBeGreaterThan(5);
    const found: string[] = [];
    for (const { name } of tables) {
      for (const needle of ['203.0.113.77', 'Marker/7.7.7', 'Pixel 8']) {
        const [hit] = await t.db.sql.unsafe<{ n: number }[]>(`select count(*)::int as n from ${name} t where t::text like $1`, [
          `%${needle}%`,
        ]);
        if (hit!.n > 0) found.push(`${name}: ${needle}`);
      }
    }
    expect(found).toEqual([]);
  });

  it('rotates the salt at UTC midnight: ids differ across days and agree across instances within a day', async () => {
    await t.db.sql`delete from headcount_salts`;
    const day1 = Math.floor(Date.now() / DAY_MS) * DAY_MS - 3 * DAY_MS;
    clock = day1 + 23 * 3_600_000;
    const a = await start({}, t.db);
    const b = await start({}, t.db);
    await track(a, UA.firefoxLinux, { page: '/a1' });
    await track(b, UA.firefoxLinux, { page: '/b1' });
    clock = day1 + DAY_MS + 60_000; // 00:01 the next day
    await track(a, UA.firefoxLinux, { page: '/a2' });
    await track(b, UA.firefoxLinux, { page: '/b2' });
    const ids = Object.fromEntries(
      (await t.db.sql<{ page: string; user_id: string }[]>`select page, user_id from events`).map((r) => [r.page, r.user_id]),
    );
    expect(ids['/a1']).toBe(ids['/b1']);
    expect(ids['/a2']).toBe(ids['/b2']);
    expect(ids['/a2']).not.toBe(ids['/a1']);
    const iso = (ms: number) => new Date(ms).toISOString().slice(0, 10);
    const salts = async () =>
      (await t.db.sql<{ day: string }[]>`select day::text from headcount_salts order by day`).map((d) => d.day);
    expect(await salts()).toEqual([iso(day1), iso(day1 + DAY_MS)]);
    // Two days later the salts of the days before the previous one are gone.
    clock = day1 + 3 * DAY_MS + 60_000;
    await track(a, UA.firefoxLinux, { page: '/a4' });
    expect(await salts()).toEqual([iso(day1 + 3 * DAY_MS)]);
  });
});
