import { describe, expect, it } from 'vitest';
import { duration, percent, pointChange } from '../../web/compare.js';

describe('the dashboard’s visit figures', () => {
  it('writes a visit’s length in seconds, minutes and hours, rounded', () => {
    expect([0, 0.4, 45, 59.6, 60, 200, 3599, 3600, 3900, 7170].map(duration)).toEqual([
      '0 s',
      '0 s',
      '45 s',
      '1 min',
      '1 min',
      '3 min 20 s',
      '59 min 59 s',
      '1 h',
      '1 h 5 min',
      '2 h',
    ]);
  });

  it('writes a share as a whole percentage', () => {
    expect([0, 0.4, 2 / 3, 1].map(percent)).toEqual(['0 %', '40 %', '67 %', '100 %']);
  });

  it('changes a bounce rate in points, and a rate where there was none (before or now) neither up nor down', () => {
    expect(pointChange(0.4, 0.5)).toEqual({ text: '−10 pts', direction: 'down' });
    expect(pointChange(0.56, 0.5)).toEqual({ text: '+6 pts', direction: 'up' });
    expect(pointChange(0.501, 0.5)).toEqual({ text: '±0 pts', direction: 'same' });
    expect(pointChange(0.5, null)).toEqual({ text: 'new', direction: 'same' });
    expect(pointChange(null, null)).toEqual({ text: '±0 pts', direction: 'same' });
    // Visits then, none now: no rate to compare.
    expect(pointChange(null, 0.5)).toEqual({ text: 'no visits', direction: 'same' });
  });
});
