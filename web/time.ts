/**
 * Calendar arithmetic in a chosen time zone, with the browser's Intl only: enough to
 * ask /v1/stats for whole local hours and days (the service does the rest).
 */

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Raw events, minutes and hours are kept 60 days; before that only UTC day sketches. */
export const RAW_RETENTION_DAYS = 60;

/**
 * ICU (so the browser) still names some zones by their old IANA names; the database
 * knows both, people look for the current one.
 */
const CURRENT_NAMES: Record<string, string> = {
  'Africa/Asmera': 'Africa/Asmara',
  'America/Buenos_Aires': 'America/Argentina/Buenos_Aires',
  'America/Catamarca': 'America/Argentina/Catamarca',
  'America/Coral_Harbour': 'America/Atikokan',
  'America/Cordoba': 'America/Argentina/Cordoba',
  'America/Godthab': 'America/Nuuk',
  'America/Indianapolis': 'America/Indiana/Indianapolis',
  'America/Jujuy': 'America/Argentina/Jujuy',
  'America/Louisville': 'America/Kentucky/Louisville',
  'America/Mendoza': 'America/Argentina/Mendoza',
  'Asia/Calcutta': 'Asia/Kolkata',
  'Asia/Katmandu': 'Asia/Kathmandu',
  'Asia/Rangoon': 'Asia/Yangon',
  'Asia/Saigon': 'Asia/Ho_Chi_Minh',
  'Atlantic/Faeroe': 'Atlantic/Faroe',
  'Europe/Kiev': 'Europe/Kyiv',
  'Pacific/Enderbury': 'Pacific/Kanton',
  'Pacific/Ponape': 'Pacific/Pohnpei',
  'Pacific/Truk': 'Pacific/Chuuk',
};
const current = (zone: string): string => CURRENT_NAMES[zone] ?? zone;

/** The browser's own zone (the default of the page). */
export const browserTimeZone = (): string => current(Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC');

/** Every IANA zone the browser knows, by their current names, with UTC; sorted. */
export function timeZones(): string[] {
  const zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
  return [...new Set(['UTC', ...zones.map(current)])].sort();
}

const partsFormats = new Map<string, Intl.DateTimeFormat>();

/** Local calendar fields of an instant in `timeZone`. */
function localParts(ms: number, timeZone: string): { date: string; minute: number } {
  let f = partsFormats.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    partsFormats.set(timeZone, f);
  }
  const p = Object.fromEntries(f.formatToParts(ms).map((x) => [x.type, x.value]));
  return { date: `${p.year}-${p.month}-${p.day}`, minute: Number(p.minute) };
}

/** The local date (YYYY-MM-DD) holding `ms` in `timeZone`. */
export const localDate = (ms: number, timeZone: string): string => localParts(ms, timeZone).date;

/** `date` (YYYY-MM-DD) moved by `days` calendar days. */
export function addDays(date: string, days: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
}

/** Calendar days from `from` to `to` (dates). */
export const daysBetween = (from: string, to: string): number => Math.round((Date.parse(to) - Date.parse(from)) / DAY_MS);

/**
 * The start of the local hour holding `ms`. Zone offsets are whole minutes, so the
 * local hour starts `local minute` minutes before the instant's whole minute.
 */
export function localHourStart(ms: number, timeZone: string): number {
  const minute = Math.floor(ms / 60_000) * 60_000;
  return minute - localParts(minute, timeZone).minute * 60_000;
}

export type RangeKey = '24h' | '7d' | '30d' | '12m' | 'custom';
export type Granularity = 'hour' | 'day';

export interface Range {
  /** What /v1/stats is asked: an instant (ISO, UTC) or a local date. */
  from: string;
  to: string;
  granularity: Granularity;
  /** The zone the range is read in: the chosen one, or UTC where only UTC days are kept. */
  timeZone: string;
  /** Why the zone is not the chosen one, when it is not. */
  note?: string;
  /** Whether the range holds the present (then the page polls). */
  live: boolean;
}

export interface RangeChoice {
  key: RangeKey;
  timeZone: string;
  /** Custom: first and last local day (inclusive). */
  customFrom?: string;
  customTo?: string;
}

const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');

/**
 * The /v1/stats range of a choice at `now`: whole local hours for the last 24 hours
 * (the current one included), whole local days for longer ones (today included). Before
 * the raw retention the service keeps UTC day sketches only: such ranges are read in UTC.
 */
export function rangeOf(choice: RangeChoice, now: number): Range {
  const { key, timeZone } = choice;
  if (key === '24h') {
    const hour = localHourStart(now, timeZone);
    return { from: iso(hour - 23 * HOUR_MS), to: iso(hour + HOUR_MS), granularity: 'hour', timeZone, live: true };
  }
  let from: string;
  let to: string;
  let zone = timeZone;
  if (key === 'custom' && choice.customFrom && choice.customTo) {
    const [a, b] = [choice.customFrom, choice.customTo].sort() as [string, string];
    from = a;
    to = addDays(b, 1);
  } else {
    const days = key === '7d' ? 7 : key === '12m' ? 365 : 30;
    to = addDays(localDate(now, timeZone), 1);
    from = addDays(to, -days);
  }
  let note: string | undefined;
  // The first UTC day whose raw data is kept, with a day to spare for zones ahead of UTC.
  const rawStart = addDays(localDate(now, 'UTC'), -(RAW_RETENTION_DAYS - 2));
  if (from < rawStart && zone !== 'UTC') {
    note = `Shown in UTC days: before the last ${RAW_RETENTION_DAYS} days only UTC day counts are kept.`;
    zone = 'UTC';
    if (key !== 'custom') {
      to = addDays(localDate(now, 'UTC'), 1);
      from = addDays(to, -365);
    }
  }
  const granularity: Granularity = daysBetween(from, to) <= 2 ? 'hour' : 'day';
  const live = Date.parse(`${from}T00:00:00Z`) - DAY_MS <= now && now < Date.parse(`${to}T00:00:00Z`) + DAY_MS;
  return { from, to, granularity, timeZone: zone, ...(note ? { note } : {}), live };
}
