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

/**
 * The change of a share (the bounce rate, 0–1) in percentage points: "+5 pts", "−3 pts",
 * "±0 pts"; "new" when the previous period had no visits (null: a rate that was not, so
 * neither a rise nor a fall), "no visits" when this one has none. A relative change of a
 * rate ("+20 %" from 10 % to 12 %) reads as the wrong thing.
 */
export function pointChange(
  current: number | null,
  previous: number | null,
): { text: string; direction: 'up' | 'down' | 'same' } {
  if (previous === null) return { text: current === null ? '±0 pts' : 'new', direction: 'same' };
  if (current === null) return { text: 'no visits', direction: 'same' };
  const points = Math.round((current - previous) * 100);
  if (points === 0) return { text: '±0 pts', direction: 'same' };
  return points > 0 ? { text: `+${points} pts`, direction: 'up' } : { text: `−${-points} pts`, direction: 'down' };
}

/** A visit's length as read: "0 s", "45 s", "3 min 20 s", "1 h 5 min" (seconds rounded). */
export function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return s % 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s / 60} min`;
  const minutes = Math.round(s / 60);
  return minutes % 60 ? `${Math.floor(minutes / 60)} h ${minutes % 60} min` : `${minutes / 60} h`;
}

/** A share (0–1) as a whole percentage: "60 %". */
export const percent = (share: number): string => `${Math.round(share * 100)} %`;
