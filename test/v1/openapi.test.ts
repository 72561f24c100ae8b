import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../src/v1/openapi/document.js';
import { useTestApp } from '../helpers/app.js';
import { openApiViolation } from '../helpers/openapi.js';

describe('the OpenAPI document', () => {
  const t = useTestApp('postgres', { resetEach: false });

  it('is valid OpenAPI 3.1, served at /v1/openapi.json', async () => {
    const res = await t.http.get('/v1/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body).toEqual(JSON.parse(JSON.stringify(openApiDocument())));
    const validator = new Validator();
    const result = await validator.validate(res.body);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('covers /v1 and the seed APIs with their errors', () => {
    const doc = openApiDocument() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> };
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/analytics',
        '/collect',
        '/daily_uniques',
        '/docs',
        '/health',
        '/monthly_uniques',
        '/page-views/multi',
        '/page-views/single',
        '/report',
        '/v1/events',
        '/v1/export',
        '/v1/keys',
        '/v1/openapi.json',
        '/v1/sites',
        '/v1/sites/{site}',
        '/v1/stats',
      ].sort(),
    );
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if (path.startsWith('/docs') || path === '/v1/openapi.json' || method === 'options') continue;
        expect(Object.keys(op.responses), `${method} ${path}`).toContain(path === '/health' ? '503' : '400');
      }
    }
  });

  it('catches a response that does not match it (the check every /v1 test runs)', () => {
    expect(openApiViolation('GET', '/v1/stats', 200, 'application/json', { meta: {}, data: [] }, false)).toMatch(
      /must have required property/,
    );
    expect(openApiViolation('GET', '/v1/stats', 418, 'application/json', {}, false)).toMatch(/status not documented/);
    expect(
      openApiViolation('POST', '/v1/events', 200, 'application/json', { accepted: 1, duplicates: 0, rejected: [] }, false),
    ).toBeNull();
  });

  it('is rendered at /docs from files served here, not from another host', async () => {
    const page = await t.http.get('/docs');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const sources = [...page.text.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(sources.length).toBeGreaterThanOrEqual(3);
    for (const src of sources) {
      expect(src.startsWith('/docs/'), src).toBe(true);
      const asset = await t.http.get(src);
      expect(asset.status, src).toBe(200);
    }
    expect((await t.http.get('/docs/init.js')).text).toContain("url: '/v1/openapi.json'");
    expect((await t.http.get('/docs/package.json')).status).toBe(404);
  });
});
