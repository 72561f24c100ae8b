import { describe, expect, it } from 'vitest';
import { anchorOf, brokenLinks, daysSince, differences, type Example, parseBlocks, shiftDates } from '../helpers/doc-examples.js';

const FENCE = '```';
const md = (...lines: string[]) => lines.join('\n');
const example = (command: string, ...expected: string[]): Example => ({ file: 'x.md', line: 1, command, expected });

describe('reading the examples of the documentation', () => {
  it('takes each $ command with the lines that follow it, across continued lines and quotes left open', () => {
    const [block] = parseBlocks(
      'x.md',
      md(
        'Text.',
        '',
        `${FENCE}sh`,
        `$ curl -X POST http://127.0.0.1:8080/v1/events -d '{"events":[`,
        `    {"user":"anna","kind":"signup"}]}'`,
        '{"accepted":1}',
        "$ curl 'http://127.0.0.1:8080/collect?cid=a' \\",
        "    -H 'X-Request-Id: r1'   # the caller's id, then nothing printed",
        "$ curl http://127.0.0.1:8080/health   # it's up",
        '{"status":"ok"}',
        FENCE,
      ),
    );
    expect(block!.examples.map((e) => [e.line, e.command, e.expected])).toEqual([
      [
        4,
        `curl -X POST http://127.0.0.1:8080/v1/events -d '{"events":[\n    {"user":"anna","kind":"signup"}]}'`,
        ['{"accepted":1}'],
      ],
      [
        7,
        "curl 'http://127.0.0.1:8080/collect?cid=a' \\\n    -H 'X-Request-Id: r1'   # the caller's id, then nothing printed",
        [],
      ],
      [9, "curl http://127.0.0.1:8080/health   # it's up", ['{"status":"ok"}']],
    ]);
  });

  it('leaves out a block marked not-tested, with its reason, and other languages; refuses an unmarked block without $', () => {
    const blocks = parseBlocks(
      'x.md',
      md('<!-- not-tested: it starts the service -->', `${FENCE}sh`, 'npm start', FENCE, `${FENCE}sql`, 'select 1;', FENCE),
    );
    expect(blocks).toEqual([{ file: 'x.md', line: 2, notTested: 'it starts the service', examples: [] }]);
    expect(() => parseBlocks('x.md', md('Run:', `${FENCE}sh`, 'npm start', FENCE))).toThrow(
      /x\.md:3: a line of a sh block outside any command/,
    );
  });
});

describe('comparing an example with what it printed', () => {
  it('finds a changed output line, a line too many or too few, and a lost carriage return', () => {
    const e = example("curl 'http://127.0.0.1:8080/analytics?timestamp=1'", 'unique_users,2', 'clicks,1', 'impressions,1');
    const learned = new Map<string, string>();
    expect(differences(e, 'unique_users,2\nclicks,1\nimpressions,1\n', learned)).toEqual([]);
    expect(differences(e, 'unique_users,2\nclicks,2\nimpressions,1\n', learned)).toEqual([
      'line 2: documented "clicks,1", got "clicks,2"',
    ]);
    expect(differences(e, 'unique_users,2\nclicks,1\n', learned)).toHaveLength(1);
    expect(differences(e, 'unique_users,2\nclicks,1\nimpressions,1\nextra\n', learned)).toHaveLength(1);
    expect(differences(e, 'unique_users,2\r\nclicks,1\r\nimpressions,1\r\n', learned)).toHaveLength(3);
  });

  it('with curl -i, checks the status line and each documented header (a run has more), then the body', () => {
    const e = example(
      'curl -i -X OPTIONS http://127.0.0.1:8080/v1/events',
      'HTTP/1.1 204 No Content',
      'Access-Control-Allow-Headers: Content-Type,Authorization',
      '',
    );
    const answer = (allow: string) =>
      `HTTP/1.1 204 No Content\r\nVary: Origin\r\nAccess-Control-Allow-Headers: ${allow}\r\nDate: Fri, 04 Dec 2026 20:00:00 GMT\r\n\r\n`;
    expect(differences(e, answer('Content-Type,Authorization'), new Map())).toEqual([]);
    expect(differences(e, answer('Content-Type'), new Map())).toEqual([
      'header: documented "Access-Control-Allow-Headers: Content-Type,Authorization", got ["Access-Control-Allow-Headers: Content-Type"]',
    ]);
    expect(differences(e, answer('Content-Type,Authorization').replace('204 No Content', '200 OK'), new Map())).toHaveLength(1);
    const withBody = example('curl -i http://127.0.0.1:8080/v1/stats', 'HTTP/1.1 401 Unauthorized', '', '{"error":{}}');
    expect(differences(withBody, 'HTTP/1.1 401 Unauthorized\r\nX-Request-Id: 1\r\n\r\n{"error":{}}', new Map())).toEqual([]);
    expect(differences(withBody, 'HTTP/1.1 401 Unauthorized\r\n\r\n{"error":{"code":"x"}}', new Map())).toHaveLength(1);
  });

  it('takes the keys a run made in place of the documented ones, there and in the commands after', () => {
    const doc = `hck_${'A'.repeat(43)}`;
    const run = `hck_${'b'.repeat(43)}`;
    const learned = new Map<string, string>();
    const create = example(
      'npm run -s keys -- create --site shop --scope read',
      doc,
      '',
      'id 3f9c2a7b1e04, scope read, site shop.',
    );
    expect(differences(create, `${run}\n\nid 0123456789ab, scope read, site shop.\n`, learned)).toEqual([]);
    expect([...learned]).toEqual([
      [doc, run],
      ['3f9c2a7b1e04', '0123456789ab'],
    ]);
    expect(
      differences(example('npm run -s keys -- revoke 3f9c2a7b1e04', 'revoked 3f9c2a7b1e04'), 'revoked 0123456789ab\n', learned),
    ).toEqual([]);
    expect(differences(create, `${run}\n\nid 0123456789ab, scope read, site blog.\n`, learned)).toHaveLength(1);
  });

  it('takes the key and id that POST /v1/keys answered in place of the documented ones', () => {
    const doc = `hck_${'C'.repeat(43)}`;
    const run = `hck_${'d'.repeat(43)}`;
    const learned = new Map<string, string>();
    const made = (key: string, id: string, site = 'shop') =>
      `{"key":"${key}","id":"${id}","scope":"ingest","site":"${site}","name":""}`;
    const create = example(
      `curl -X POST http://127.0.0.1:8080/v1/keys -d '{"site":"shop","scope":"ingest"}'`,
      made(doc, '5c0e7a9d2b41'),
    );
    expect(differences(create, `${made(run, '00000000ffff')}\n`, learned)).toEqual([]);
    expect([...learned]).toEqual([
      [doc, run],
      ['5c0e7a9d2b41', '00000000ffff'],
    ]);
    // The rest of the answer still has to be as documented.
    expect(differences(create, `${made(run, '00000000ffff', 'blog')}\n`, learned)).toHaveLength(1);
  });

  it('lets numbers and dates from $(date ...) differ, and nothing else', () => {
    const e = example(
      'curl "http://127.0.0.1:8080/analytics?timestamp=$(date +%s)"',
      '{"message":"1795407794 looks like seconds (use 1795407794000)"}',
    );
    expect(differences(e, '{"message":"1796000000 looks like seconds (use 1796000000000)"}', new Map())).toEqual([]);
    expect(differences(e, '{"message":"1796000000 looks like minutes (use 1796000000000)"}', new Map())).toHaveLength(1);
    const fixed = example("curl 'http://127.0.0.1:8080/v1/stats?from=2026-11-21'", '{"from":"2026-11-21T00:00:00+00:00"}');
    expect(differences(fixed, '{"from":"2026-11-22T00:00:00+00:00"}', new Map())).toHaveLength(1);
  });
});

describe('moving the examples to today', () => {
  it('moves every date, in each of its forms, by whole days', () => {
    const text = `from=2026-11-21&to=20261123 "2026-11-23T02:00:00Z" "2026-11-23_03:10" headcount-shop-20261121T000000Z 1795407794000 2026-13-01`;
    expect(shiftDates(text, 10)).toBe(
      `from=2026-12-01&to=20261203 "2026-12-03T02:00:00Z" "2026-12-03_03:10" headcount-shop-20261201T000000Z 1795407794000 2026-13-01`,
    );
    expect(shiftDates(shiftDates(text, 10), -10)).toBe(text);
    expect(daysSince('2026-11-24', Date.parse('2026-12-04T20:00:00Z'))).toBe(10);
  });
});

describe('links between the documents', () => {
  it("finds a link to a missing file or heading, as GitHub makes headings' anchors", () => {
    expect(anchorOf('Analytics (seeds 001, 002, 004)')).toBe('analytics-seeds-001-002-004');
    expect(anchorOf('`GET /v1/stats`')).toBe('get-v1stats');
    expect(anchorOf('Sizing: WORKERS, the pool and PostgreSQL')).toBe('sizing-workers-the-pool-and-postgresql');
    const files: Record<string, string> = { 'docs/api.md': '# API\n\n## Keys\n', 'README.md': '' };
    const read = (path: string) => files[path] ?? null;
    const readme = '[keys](docs/api.md#keys) [x](docs/api.md#nope) [y](docs/ops.md) [z](https://example.com/#a)';
    expect(brokenLinks('README.md', readme, read)).toEqual([
      'README.md: docs/api.md#nope (no such heading)',
      'README.md: docs/ops.md (no docs/ops.md)',
    ]);
    expect(brokenLinks('docs/api.md', '[readme](../README.md) [k](#keys)\n```\n[no](#where)\n```', read)).toEqual([]);
  });
});
