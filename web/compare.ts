/**
 * The change of a total against the previous period, as shown beside it: "+12 %",
 * "−3 %", "±0 %", or "new" when the previous period had none.
 */
export function change(current: number, previous: number): { text: string; direction: 'up' | 'down' | 'same' } {
  if (previous === 0) return current === 0 ? { text: '±0 %', direction: 'same' } : { text: 'new', direction: 'up' };
  const percent = Math.round(((current - previous) / previous) * 100);
  if (percent === 0) return { text: '±0 %', direction: 'same' };
  return percent > 0 ? { text: `+${percent} %`, direction: 'up' } : { text: `−${-percent} %`, direction: 'down' };
}
