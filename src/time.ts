/**
 * Time rules shared by every API: UTC, half-open windows [start, end), events accepted
 * from the start of the retention window up to five minutes ahead of now.
 */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
export const RETENTION_DAYS = 60;
export const RETENTION_MS = RETENTION_DAYS * DAY_MS;
export const FUTURE_TOLERANCE_MS = 5 * 60_000;

export const floorHour = (ms: number): number => Math.floor(ms / HOUR_MS) * HOUR_MS;
export const floorDay = (ms: number): number => Math.floor(ms / DAY_MS) * DAY_MS;

/**
 * Epoch values below this, read as milliseconds, fall before 1973-03-03: such a value
 * is almost surely in seconds. Read as seconds, values above 10^11 fall after the year
 * 5138: almost surely milliseconds.
 */
const UNIT_CONFUSION_BOUNDARY = 100_000_000_000;

export type EpochUnit = 'seconds' | 'milliseconds';

/** Why an event time cannot be accepted, or null when it can. */
export function eventTimeProblem(raw: number, unit: EpochUnit, nowMs: number): string | null {
  if (unit === 'milliseconds' && raw < UNIT_CONFUSION_BOUNDARY && raw * 1000 >= nowMs - RETENTION_MS) {
    return `must be in milliseconds since the epoch; ${raw} looks like seconds (use ${Math.round(raw * 1000)})`;
  }
  if (unit === 'seconds' && raw >= UNIT_CONFUSION_BOUNDARY) {
    return `must be in seconds since the epoch; ${raw} looks like milliseconds (use ${Math.floor(raw / 1000)})`;
  }
  const ms = unit === 'seconds' ? raw * 1000 : raw;
  return timeWindowProblem(ms, nowMs);
}

/** Why an instant lies outside [now - retention, now + 5 min], or null. */
export function timeWindowProblem(ms: number, nowMs: number): string | null {
  // Beyond ±100,000,000 days a JavaScript date does not exist (toISOString throws).
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) return 'is not a time that exists';
  if (ms < nowMs - RETENTION_MS) {
    return `is ${new Date(ms).toISOString()}, older than the ${RETENTION_DAYS}-day retention window (earliest accepted: ${new Date(nowMs - RETENTION_MS).toISOString()})`;
  }
  if (ms > nowMs + FUTURE_TOLERANCE_MS) {
    return `is ${new Date(ms).toISOString()}, more than 5 minutes in the future (server time ${new Date(nowMs).toISOString()})`;
  }
  return null;
}

/** `YYYY-MM-DD` or `YYYYMMDD` (ISO 8601 calendar dates) to the epoch ms of that UTC midnight. */
export function parseIsoDate(text: string): number | null {
  const m = /^(\d{4})-?(\d{2})-?(\d{2})$/.exec(text);
  if (!m || (text.length === 10) !== text.includes('-')) return null;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(year, month - 1, day);
  const back = new Date(ms);
  // Date.UTC rolls 2026-02-30 over to March: reject what does not come back the same.
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day) return null;
  return ms;
}

export const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

const ISO_TIMESTAMP = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|z|[+-]\d{2}:?\d{2})?$/;
const PAGE_VIEW_KEY = /^(\d{4})-(\d{2})-(\d{2})_(\d{2}):(\d{2})$/;

/**
 * ISO 8601 date-times (`2026-11-23T10:00:00Z`, `…T10:00+02:00`, `…T10:00:00.250Z`; a
 * space may stand for the T, and as RFC 3339 allows, t for T; fractions of any length,
 * read to the millisecond) to epoch ms. Without a zone designator the time is UTC,
 * as every time here is. Also takes the page-view key form `YYYY-MM-DD_HH:MM` (UTC).
 */
export function parseIsoTimestamp(text: string, opts: { pageViewKey?: boolean } = {}): number | null {
  const m = ISO_TIMESTAMP.exec(text) ?? (opts.pageViewKey ? PAGE_VIEW_KEY.exec(text) : null);
  if (!m) return null;
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6] ?? 0);
  const ms = Number((m[7] ?? '').padEnd(3, '0').slice(0, 3));
  if (hour > 23 || minute > 59 || second > 59) return null;
  const date = parseIsoDate(`${m[1]}-${m[2]}-${m[3]}`);
  if (date === null) return null;
  let offsetMs = 0;
  const zone = m[8];
  if (zone && zone !== 'Z' && zone !== 'z') {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    const [h, mm] = [Number(z[2]), Number(z[3])];
    if (h > 23 || mm > 59) return null;
    offsetMs = (z[1] === '-' ? -1 : 1) * (h * 60 + mm) * 60_000;
  }
  return date + hour * HOUR_MS + minute * 60_000 + second * 1000 + ms - offsetMs;
}

/** What the database (headcount_zone) reads as a zone name rather than an offset or a POSIX string. */
const ZONE_NAME = /^[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*$/;
/**
 * Names a server's zone database holds that are not zones of the IANA database: the
 * machine's own zone (localtime), a placeholder (Factory), a template (posixrules), and
 * the files of other layouts (posix/…, right/… with leap seconds).
 */
const NOT_IANA_ZONES = /^(?:localtime|factory|posixrules|(?:posix|right)(?:\/.*)?)$/i;
const ianaZones = new Set<string>();

/**
 * Whether `timezone` looks like a zone name but is none of the IANA database's: neither
 * a canonical name nor an alias (Asia/Calcutta, US/Eastern) that Intl (ICU) accepts, or
 * one of the server's extra names above, which PostgreSQL would accept. Offsets and
 * other shapes are left to the database's own check.
 */
export function isNonIanaZoneName(timezone: string): boolean {
  if (!ZONE_NAME.test(timezone) || ianaZones.has(timezone)) return false;
  if (NOT_IANA_ZONES.test(timezone)) return true;
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    return true;
  }
  // Bounded: only names ICU knows (about 600) are remembered.
  ianaZones.add(timezone);
  return false;
}
