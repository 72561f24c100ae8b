import { DAY_MS } from '../../src/time.js';

/**
 * Local calendars computed with the JavaScript runtime's own time zone data (Intl),
 * independently of PostgreSQL's: the tests compare the two.
 */
const offsetFormat = new Map<string, Intl.DateTimeFormat>();
const dateFormat = new Map<string, Intl.DateTimeFormat>();

/** The zone's offset from UTC at instant `ms`, in ms (east positive). */
export function offsetMs(ms: number, zone: string): number {
  const fixed = /^([+-])(\d{2}):(\d{2})$/.exec(zone); // an offset zone (Node 20's Intl has none)
  if (fixed) return (fixed[1] === '-' ? -1 : 1) * (Number(fixed[2]) * 60 + Number(fixed[3])) * 60_000;
  let f = offsetFormat.get(zone);
  if (!f) offsetFormat.set(zone, (f = new Intl.DateTimeFormat('en-US', { timeZone: zone, timeZoneName: 'longOffset' })));
  const name = f.formatToParts(ms).find((p) => p.type === 'timeZoneName')!.value; // GMT, GMT+05:30, GMT-04:00
  const m = /^GMT(?:([+-])(\d{2}):(\d{2}))?$/.exec(name);
  if (!m) throw new Error(`unexpected offset ${name}`);
  return m[1] ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000 : 0;
}

/** The local calendar date of instant `ms` in `zone`, YYYY-MM-DD. */
export function localDate(ms: number, zone: string): string {
  if (/^[+-]\d{2}:\d{2}$/.test(zone)) return new Date(ms + offsetMs(ms, zone)).toISOString().slice(0, 10);
  let f = dateFormat.get(zone);
  if (!f)
    dateFormat.set(
      zone,
      (f = new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit' })),
    );
  return f.format(ms);
}

/** The instant local midnight of `date` (YYYY-MM-DD) happens in `zone`. */
export function localMidnight(date: string, zone: string): number {
  const utcMidnight = Date.parse(`${date}T00:00:00Z`);
  let guess = utcMidnight - offsetMs(utcMidnight, zone);
  guess = utcMidnight - offsetMs(guess, zone);
  return guess;
}

export const addDays = (date: string, n: number): string =>
  new Date(Date.parse(`${date}T00:00:00Z`) + n * DAY_MS).toISOString().slice(0, 10);

/** ISO 8601 local time with offset, as /v1/stats labels buckets: 2026-11-23T00:00:00+05:30. */
export function localLabel(ms: number, zone: string): string {
  const off = offsetMs(ms, zone);
  const local = new Date(ms + off).toISOString().slice(0, 19);
  const abs = Math.abs(off) / 60_000;
  return `${local}${off < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** The first date from `fromDate` on, within `days`, whose local day in `zone` is not 24 hours long. */
export function nextDstDay(fromDate: string, zone: string, days = 400): string {
  for (let i = 0; i < days; i++) {
    const d = addDays(fromDate, i);
    if (localMidnight(addDays(d, 1), zone) - localMidnight(d, zone) !== DAY_MS) return d;
  }
  throw new Error(`no DST change in ${zone} within ${days} days of ${fromDate}`);
}

export type Calendar = 'minute' | 'hour' | 'day' | 'week' | 'month';

/** The start of the `unit` of `zone`'s calendar that holds instant `ms` (weeks start on Monday). */
export function calendarStart(ms: number, unit: Calendar, zone: string): number {
  if (unit === 'minute') return Math.floor(ms / 60_000) * 60_000;
  if (unit === 'hour') return ms - ((((ms + offsetMs(ms, zone)) % 3_600_000) + 3_600_000) % 3_600_000);
  const date = localDate(ms, zone);
  if (unit === 'day') return localMidnight(date, zone);
  if (unit === 'month') return localMidnight(`${date.slice(0, 8)}01`, zone);
  const monday = (new Date(`${date}T00:00:00Z`).getUTCDay() + 6) % 7;
  return localMidnight(addDays(date, -monday), zone);
}

/** The start of the `unit` after the one starting at `start`. */
export function calendarNext(start: number, unit: Calendar, zone: string): number {
  if (unit === 'minute') return start + 60_000;
  if (unit === 'hour') return start + 3_600_000;
  const date = localDate(start, zone);
  if (unit === 'day') return localMidnight(addDays(date, 1), zone);
  if (unit === 'week') return localMidnight(addDays(date, 7), zone);
  const [y, m] = date.split('-').map(Number) as [number, number];
  return localMidnight(m === 12 ? `${y + 1}-01-01` : `${y}-${String(m + 1).padStart(2, '0')}-01`, zone);
}
