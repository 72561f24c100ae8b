import type { StatsResponse as StatsAnswer } from '../src/v1/stats/schemas.js';

/** The dashboard asks for the default metrics (users,events): every row carries both. */
export type StatsRow = StatsAnswer['data'][number] & { users: number; events: number };
export type StatsResponse = Omit<StatsAnswer, 'data'> & { data: StatsRow[] };

/** The visit metrics the page asks for (metrics=): every row carries them. */
export const VISIT_METRICS = 'visits,bounce_rate,visit_duration';
type Row = StatsAnswer['data'][number];
export type VisitRow = Row & Required<Pick<Row, 'visits' | 'bounce_rate' | 'visit_duration'>>;
export type VisitResponse = Omit<StatsAnswer, 'data'> & { data: VisitRow[] };

/** A /v1/stats request that did not answer with data. */
export class StatsError extends Error {
  /** The parameter a 400 is about (its first detail's), when it says. */
  readonly parameter: string | undefined;
  /** The answer's Retry-After. */
  readonly retryAfterMs: number | undefined;

  constructor(
    message: string,
    /** The HTTP status; 0 when the service did not answer at all. */
    readonly status: number,
    /** The error envelope's code, when there was one. */
    readonly code?: string,
    more: { parameter?: string; retryAfterMs?: number } = {},
  ) {
    super(message);
    this.parameter = more.parameter;
    this.retryAfterMs = more.retryAfterMs;
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

export type StatsParams = Record<string, string | number | readonly string[] | undefined>;

/** The URL of a /v1/stats request (unset parameters left out, a list as the parameter repeated). */
export function statsUrl(params: StatsParams): string {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (typeof value === 'object') for (const v of value) q.append(name, v);
    else if (value !== undefined && value !== '') q.set(name, String(value));
  }
  return `/v1/stats?${q.toString()}`;
}

/**
 * The most /v1/stats requests the page has running at once: what the service runs at
 * once per key (STATS_MAX_CONCURRENT_PER_KEY, 4); the rest wait here, in order.
 */
export const MAX_STATS_IN_FLIGHT = 4;
/** Answers that mean "too many at once, try again shortly": retried after Retry-After. */
const BUSY = new Set(['too_many_concurrent', 'stats_busy', 'rate_limited']);
const BUSY_RETRIES = 3;
const BUSY_WAIT_MAX_MS = 5_000;

let running = 0;
/** Requests waiting for a slot; each is handed the slot of one that ended. */
const waiting: (() => void)[] = [];

const superseded = (): DOMException => new DOMException('superseded by a newer read', 'AbortError');

function release(): void {
  const next = waiting.shift();
  if (next) next();
  else running--;
}

async function acquire(signal: AbortSignal | undefined): Promise<void> {
  if (running < MAX_STATS_IN_FLIGHT) {
    running++;
  } else {
    await new Promise<void>((resolve, reject) => {
      const go = (): void => {
        signal?.removeEventListener('abort', drop);
        resolve();
      };
      const drop = (): void => {
        waiting.splice(waiting.indexOf(go), 1);
        reject(superseded());
      };
      waiting.push(go);
      signal?.addEventListener('abort', drop, { once: true });
    });
  }
  if (signal?.aborted) {
    release();
    throw superseded();
  }
}

/**
 * Runs `task` once fewer than MAX_STATS_IN_FLIGHT run. A request is never aborted once
 * sent: the service keeps its slot until the query ends, so the page counts it until
 * then too. An aborted signal drops a request still waiting and rejects a running one's
 * promise at once (its answer is discarded).
 */
async function queued<T>(task: () => Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  await acquire(signal);
  const done = task().finally(release);
  if (!signal) return done;
  return Promise.race([
    done,
    new Promise<never>((_resolve, reject) => signal.addEventListener('abort', () => reject(superseded()), { once: true })),
  ]);
}

/**
 * GET /v1/stats, queued (MAX_STATS_IN_FLIGHT at once); errors become StatsError with the
 * service's own message. "Too many at once" answers (another tab with the same key) are
 * retried a few times after their Retry-After.
 */
export async function fetchStats<T extends StatsAnswer = StatsResponse>(params: StatsParams, signal?: AbortSignal): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await queued(() => requestStats<T>(params), signal);
    } catch (err) {
      if (!(err instanceof StatsError) || err.retryAfterMs === undefined || !BUSY.has(err.code ?? '') || attempt >= BUSY_RETRIES)
        throw err;
      const waitMs = Math.min(err.retryAfterMs, BUSY_WAIT_MAX_MS);
      await new Promise((resolve) => setTimeout(resolve, waitMs));
      if (signal?.aborted) throw superseded();
    }
  }
}

/** The rows carry what `params.metrics` asks for (default users,events): the caller names the type. */
async function requestStats<T extends StatsAnswer>(params: StatsParams): Promise<T> {
  let res: Response;
  try {
    res = await fetch(statsUrl(params), { headers: requestHeaders(), cache: 'no-store' });
  } catch {
    throw new StatsError('headcount is not answering: is the service running?', 0);
  }
  const body: unknown = await res.json().catch(() => undefined);
  if (res.ok && isStats(body)) return body as T;
  throw errorOf(res, body);
}

/** A StatsError from an answer that is not a success: the service's message, code, parameter and Retry-After. */
function errorOf(res: Response, body: unknown): StatsError {
  const envelope = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  const message = typeof envelope?.message === 'string' ? envelope.message : `the service answered ${res.status}`;
  const [detail] = Array.isArray(envelope?.details) ? (envelope.details as { parameter?: unknown }[]) : [];
  const retryAfterSeconds = Number(res.headers.get('Retry-After'));
  return new StatsError(message, res.status, typeof envelope?.code === 'string' ? envelope.code : undefined, {
    ...(typeof detail?.parameter === 'string' ? { parameter: detail.parameter } : {}),
    ...(retryAfterSeconds > 0 ? { retryAfterMs: retryAfterSeconds * 1000 } : {}),
  });
}

/** A new ingest key of `site` (POST /v1/keys: the page's key must be an admin key), shown once. */
export async function createIngestKey(site: string): Promise<{ key: string; id: string }> {
  let res: Response;
  try {
    res = await fetch('/v1/keys', {
      method: 'POST',
      headers: { ...requestHeaders(), 'Content-Type': 'application/json' },
      body: JSON.stringify({ site, scope: 'ingest', name: 'tracker (from the dashboard)' }),
      cache: 'no-store',
    });
  } catch {
    throw new StatsError('headcount is not answering: is the service running?', 0);
  }
  const body: unknown = await res.json().catch(() => undefined);
  const made = body as { key?: unknown; id?: unknown } | undefined;
  if (res.status === 201 && typeof made?.key === 'string' && typeof made.id === 'string') return { key: made.key, id: made.id };
  throw errorOf(res, body);
}

/**
 * The properties `site` rolls up (GET /v1/sites/{site}: its declared `props`), to suggest
 * in the property panel; none when the service does not say (a suggestion only).
 */
export async function declaredProps(site: string): Promise<string[]> {
  try {
    const res = await fetch(`/v1/sites/${encodeURIComponent(site)}`, { headers: requestHeaders(), cache: 'no-store' });
    if (!res.ok) return [];
    const body = (await res.json()) as { props?: unknown };
    return Array.isArray(body.props) ? body.props.filter((p): p is string => typeof p === 'string') : [];
  } catch {
    return [];
  }
}

const isStats = (body: unknown): body is StatsAnswer =>
  typeof body === 'object' && body !== null && 'meta' in body && Array.isArray((body as { data?: unknown }).data);
