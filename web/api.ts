import type { StatsResponse as StatsAnswer } from '../src/v1/stats/schemas.js';

/** The dashboard asks for the default metrics (users,events): every row carries both. */
export type StatsRow = StatsAnswer['data'][number] & { users: number; events: number };
export type StatsResponse = Omit<StatsAnswer, 'data'> & { data: StatsRow[] };

/** A /v1/stats request that did not answer with data. */
export class StatsError extends Error {
  constructor(
    message: string,
    /** The HTTP status; 0 when the service did not answer at all. */
    readonly status: number,
    /** The error envelope's code, when there was one. */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Where the page keeps its read key: the browser's storage, never a URL. */
const KEY_STORAGE = 'headcount.readKey';

export const storedKey = (): string | null => localStorage.getItem(KEY_STORAGE);
export const storeKey = (key: string): void => localStorage.setItem(KEY_STORAGE, key);
export const forgetKey = (): void => localStorage.removeItem(KEY_STORAGE);

/** The headers of every request the page makes: the one place the read key goes. */
export function requestHeaders(): Record<string, string> {
  const key = storedKey();
  return key ? { Accept: 'application/json', Authorization: `Bearer ${key}` } : { Accept: 'application/json' };
}

export type StatsParams = Record<string, string | number | undefined>;

/** The URL of a /v1/stats request (unset parameters left out). */
export function statsUrl(params: StatsParams): string {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== undefined && value !== '') q.set(name, String(value));
  return `/v1/stats?${q.toString()}`;
}

/** GET /v1/stats; errors become StatsError with the service's own message. */
export async function fetchStats(params: StatsParams, signal?: AbortSignal): Promise<StatsResponse> {
  let res: Response;
  try {
    res = await fetch(statsUrl(params), { headers: requestHeaders(), signal: signal ?? null, cache: 'no-store' });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw new StatsError('headcount is not answering: is the service running?', 0);
  }
  const body: unknown = await res.json().catch(() => undefined);
  if (res.ok && isStats(body)) return body;
  const envelope = (body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const message = typeof envelope?.message === 'string' ? envelope.message : `the service answered ${res.status}`;
  throw new StatsError(message, res.status, typeof envelope?.code === 'string' ? envelope.code : undefined);
}

const isStats = (body: unknown): body is StatsResponse =>
  typeof body === 'object' && body !== null && 'meta' in body && Array.isArray((body as { data?: unknown }).data);
