import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MIGRATIONS_DIR } from '../src/db/migrate.js';
import { SITE_PATTERN } from '../src/site.js';

const SAMPLES = ['default', 'shop', 'a', 'shop.example.com', 'my_site-2', '0', 'x'.repeat(128)];
const REFUSED = ['', 'Shop', '-shop', '.shop', '_shop', 'shop site', 'shop/1', 'shöp', 'x'.repeat(129)];

describe('the site pattern', () => {
  it('takes lowercase names of letters, digits, ".", "_" and "-" that start with a letter or digit, at most 128', () => {
    for (const site of SAMPLES) expect({ site, ok: SITE_PATTERN.test(site) }).toEqual({ site, ok: true });
    for (const site of REFUSED) expect({ site, ok: SITE_PATTERN.test(site) }).toEqual({ site, ok: false });
  });

  it('is the pattern of the SQL checks in the migrations (frozen copies: migrations are never edited)', () => {
    const copies = readdirSync(MIGRATIONS_DIR).flatMap((file) =>
      [...readFileSync(path.join(MIGRATIONS_DIR, file), 'utf8').matchAll(/['/](\^\[a-z0-9\][^'/]*\$)['/]/g)].map((m) => ({
        file,
        pattern: m[1],
      })),
    );
    expect(copies.length).toBeGreaterThanOrEqual(4);
    for (const copy of copies) expect(copy).toEqual({ file: copy.file, pattern: SITE_PATTERN.source });
  });

  it("is the pattern of the dashboard's site field (an HTML pattern, compiled with the v flag)", () => {
    const html = readFileSync('web/index.html', 'utf8');
    const attribute = /<input id="site"[^>]*\spattern="([^"]+)"/.exec(html)?.[1];
    expect(attribute).toBeDefined();
    const field = new RegExp(`^(?:${attribute})$`, 'v');
    for (const site of [...SAMPLES, ...REFUSED])
      expect({ site, ok: field.test(site) }).toEqual({ site, ok: SITE_PATTERN.test(site) });
  });
});
