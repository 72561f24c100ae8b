import { describe, expect, it } from 'vitest';
import { change } from '../../web/compare.js';
import { describeFilter, type Filter, formatFilter, parseFilter, rowFilter, withFilter } from '../../web/filters.js';
import { createTestDatabase } from '../helpers/db.js';

describe('the dashboard’s filters', () => {
  it('writes values with | and \\ escaped, and reads them back', () => {
    const f: Filter = { dimension: 'props.plan', op: '==', values: ['a|b', 'c\\d', 'e\\|f', ''] };
    expect(formatFilter(f)).toBe('props.plan==a\\|b|c\\\\d|e\\\\\\|f|');
    expect(parseFilter(formatFilter(f))).toEqual(f);
    expect(parseFilter('country==DE|FR')).toEqual({ dimension: 'country', op: '==', values: ['DE', 'FR'] });
    expect(parseFilter('page^=/blog/')).toEqual({ dimension: 'page', op: '^=', values: ['/blog/'] });
    expect(parseFilter('utm_term*=a=b')).toEqual({ dimension: 'utm_term', op: '*=', values: ['a=b'] });
  });

  it('ignores what /v1/stats would refuse: unknown dimensions, no operator, an empty prefix', () => {
    for (const bad of ['planet==earth', 'constructor==x', 'country', 'country=DE', 'props.Plan==x', 'referrer^=', 'page*=a|'])
      expect(parseFilter(bad), bad).toBeUndefined();
  });

  it('makes a row’s filter (no value: an empty one) and puts it in place of another on its dimension', () => {
    expect(formatFilter(rowFilter('referrer', null))).toBe('referrer==');
    expect(describeFilter(rowFilter('referrer', null))).toBe('Referrer is (none)');
    expect(describeFilter({ dimension: 'props.plan', op: '!=', values: ['free', 'pro'] })).toBe(
      'Property plan is not free or pro',
    );
    const de = rowFilter('country', 'DE');
    const mobile = rowFilter('device', 'mobile');
    expect(withFilter([de, mobile], rowFilter('country', 'FR'))).toEqual([mobile, rowFilter('country', 'FR')]);
  });

  it('reads as headcount_parse_filters reads it', async () => {
    const db = await createTestDatabase('postgres');
    try {
      const filters: Filter[] = [
        { dimension: 'props.plan', op: '==', values: ['a|b', 'c\\d', '', 'x'] },
        { dimension: 'page', op: '!=', values: ['/a|b/', '/'] },
        { dimension: 'referrer', op: '*=', values: ['ends with a backslash\\'] },
      ];
      const [row] = await db.sql<{ parsed: Filter[] }[]>`
        select headcount_parse_filters(${filters.map(formatFilter)}::text[]) as parsed
      `;
      expect(row!.parsed).toEqual(filters);
    } finally {
      await db.drop();
    }
  });

  it('says how a total changed against the previous period', () => {
    expect(change(112, 100)).toEqual({ text: '+12 %', direction: 'up' });
    expect(change(97, 100)).toEqual({ text: '−3 %', direction: 'down' });
    expect(change(1001, 1000)).toEqual({ text: '±0 %', direction: 'same' });
    expect(change(5, 0)).toEqual({ text: 'new', direction: 'up' });
    expect(change(0, 0)).toEqual({ text: '±0 %', direction: 'same' });
    expect(change(0, 7)).toEqual({ text: '−100 %', direction: 'down' });
  });
});
