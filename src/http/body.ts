import type { IncomingMessage, ServerResponse } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { ByteBudget, type Reservation } from './budget.js';
import { HttpError } from './errors.js';

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/** A received byte is charged this many: the parsed JSON takes several times the text. */
const PARSE_EXPANSION = 8;
/**
 * What one row made of a body holds from its parse to its commit, in bytes: its share of
 * the parsed JSON and the EventRow. Measured with a `/page-views/multi` body of one page
 * and 10,000 times (the parsed body and its rows live, after a full collection): 444 per
 * row on Node 20, 218 on Node 24.
 */
export const ROW_BYTES = 512;

/**
 * The limits every request body is read under (HTTP_BODY_*, HTTP_MAX_ROWS_PER_REQUEST).
 * Two budgets, so that a body that has arrived can always be parsed whatever is still
 * arriving: `receiving` holds the bytes of bodies being received, as they arrive, until
 * they are parsed; `parsing` what a body becomes (8 × its bytes, or by its rows) from its
 * parse until the response ends.
 */
export interface BodyLimits {
  receiving: ByteBudget;
  parsing: ByteBudget;
  /** The body must arrive within this, counted from the end of the headers (time spent waiting on the budget excluded). */
  timeoutMs: number;
  /** Rows (events, page-view counts) one body may become. */
  maxRows: number;
}

/** How long a request waits for either budget before it is answered 503. */
const BUDGET_WAIT_MS = 5000;

/**
 * The limits of HTTP_BODY_MEMORY_BYTES = `memoryBytes`: all of it for bodies being
 * parsed and written (one body at most half), a quarter more for bytes still arriving.
 */
export const bodyLimits = (
  memoryBytes: number,
  opts: { timeoutMs: number; maxRows: number; retryAfterSeconds: number },
): BodyLimits => ({
  // A body holds every byte it received: its share there is bounded by its size limit.
  receiving: new ByteBudget(Math.floor(memoryBytes / 4), BUDGET_WAIT_MS, opts.retryAfterSeconds, Infinity),
  parsing: new ByteBudget(memoryBytes, BUDGET_WAIT_MS, opts.retryAfterSeconds),
  timeoutMs: opts.timeoutMs,
  maxRows: opts.maxRows,
});

/** For apps made without a configuration (tests): a 64 MiB budget, HTTP_BODY_TIMEOUT_MS's and HTTP_MAX_ROWS_PER_REQUEST's defaults. */
export const defaultBodyLimits = (retryAfterSeconds: number): BodyLimits =>
  bodyLimits(64 * 1024 * 1024, { timeoutMs: 10_000, maxRows: 10_000, retryAfterSeconds });

/** Content types a JSON body may come with: clients of the seed APIs send several. */
const JSON_LIKE = /^(application\/([\w.+-]*\+)?json|text\/plain|application\/x-www-form-urlencoded)\b/i;

/** What a body is read from and answered on: a Koa context is one, so is a bare request (src/hot-routes.ts). */
export interface BodySource {
  req: IncomingMessage;
  res: ServerResponse;
}

export interface JsonBodyOptions {
  limitBytes?: number;
  /**
   * The rows the parsed body will become, counted before it is validated (it may be
   * anything), and the error for a body of more than the limit (default 413 too_many_rows).
   */
  rows?: { count: (body: unknown) => number; tooMany?: (rows: number, max: number) => HttpError };
}

/**
 * Reads and parses a JSON request body, refusing what is too large (413), not JSON by
 * its declared type (415), malformed (400), slower than the body deadline (408) or
 * becoming more rows than a request may (413). Memory is taken from the budget as the
 * bytes arrive and, once parsed, by the rows the body makes, and held until the
 * response ends (the parsed body and its rows live that long).
 */
export async function readJsonBody(from: BodySource, limits: BodyLimits, options: JsonBodyOptions = {}): Promise<unknown> {
  const limitBytes = options.limitBytes ?? DEFAULT_BODY_LIMIT_BYTES;
  const type = from.req.headers['content-type'];
  if (type && !JSON_LIKE.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', `the body must be JSON (Content-Type: application/json), not ${type}`);
  }
  const declared = Number(from.req.headers['content-length'] || 0);
  if (declared > limitBytes) throw tooLarge(limitBytes);
  const arriving = heldUntilClosed(from.res, limits.receiving.reserve());
  const { text, bytes } = await receive(from, arriving, limitBytes, limits.timeoutMs);
  // Opened once the body is whole: a body still arriving never holds a place here.
  const parsing = heldUntilClosed(from.res, limits.parsing.reserve());
  await parsing.growTo(bytes * PARSE_EXPANSION);
  const body = parseJson(text);
  // The bytes are garbage from here on; what the body became is charged to `parsing`.
  arriving.release();
  if (options.rows) {
    const rows = options.rows.count(body);
    if (rows > limits.maxRows) throw (options.rows.tooMany ?? tooManyRows)(rows, limits.maxRows);
    await parsing.growTo(rows * ROW_BYTES);
  }
  return body;
}

/** `reservation`, released when the response ends or the connection closes (already, if it has). */
function heldUntilClosed(res: ServerResponse, reservation: Reservation): Reservation {
  if (res.closed) reservation.release();
  else res.once('close', () => reservation.release());
  return reservation;
}

function parseJson(text: string): unknown {
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'the request body is empty; a JSON object is required');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

/**
 * The body's bytes, each chunk charged to `reservation` before the next is read: while the
 * budget is full the stream stays paused (the bytes wait in the socket). The client has
 * `timeoutMs` of its own time to send it all: waiting on the budget does not count.
 */
function receive(
  { req, res }: BodySource,
  reservation: Reservation,
  limitBytes: number,
  timeoutMs: number,
): Promise<{ text: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    // Decoded as they come, so that no chunk outlives its event: chunks kept until the
    // body is whole would be promoted to the old generation, and their memory outside the
    // heap would wait for a full collection (V8 runs one per 64 MB of such memory).
    const decoder = new StringDecoder('utf8');
    let text = '';
    let size = 0;
    let clientMs = 0;
    let since = performance.now();
    let timer: NodeJS.Timeout | undefined;
    let charging = false;
    let ended = false;
    let done = false;
    const arm = (): void => {
      since = performance.now();
      timer = setTimeout(expire, Math.max(0, timeoutMs - clientMs));
    };
    // Only a client that has sent nothing more is cut off: a busy event loop may have left
    // its bytes unread in the socket, and the next poll of I/O (before setImmediate) reads them.
    const expire = (): void => {
      const received = size;
      setImmediate(() => {
        if (!charging && size === received) finish(timedOut(timeoutMs));
      });
    };
    const disarm = (): void => {
      clearTimeout(timer);
      clientMs += performance.now() - since;
    };
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      req.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onClose);
      if (err) {
        // What is left of the body stays unread: this connection ends with the answer.
        if (!res.headersSent) res.setHeader('Connection', 'close');
        reject(err);
      } else resolve({ text: text + decoder.end(), bytes: size });
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limitBytes) return finish(tooLarge(limitBytes));
      text += decoder.write(chunk);
      disarm();
      req.pause();
      charging = true;
      reservation.growTo(size).then(
        () => {
          charging = false;
          if (ended) return finish(null);
          arm();
          req.resume();
        },
        (err: Error) => finish(err),
      );
    };
    const onEnd = (): void => {
      ended = true;
      if (!charging) finish(null);
    };
    const onClose = (): void => {
      if (!req.complete) finish(new HttpError(400, 'request_aborted', 'the request body ended before it was complete'));
    };
    req.on('data', onData).on('end', onEnd).on('close', onClose).on('error', onClose);
    arm();
  });
}

const timedOut = (timeoutMs: number): HttpError =>
  new HttpError(408, 'request_timeout', `the request body did not arrive within ${timeoutMs} ms`, undefined, {
    Connection: 'close',
  });

const tooManyRows = (rows: number, max: number): HttpError =>
  new HttpError(413, 'too_many_rows', `a request may become at most ${max} rows, not ${rows}; split it`);

const tooLarge = (limitBytes: number): HttpError =>
  new HttpError(413, 'payload_too_large', `the request body is larger than ${limitBytes} bytes`);
