import type Koa from 'koa';
import type { ByteBudget } from './budget.js';
import { HttpError } from './errors.js';

export const DEFAULT_BODY_LIMIT_BYTES = 1024 * 1024;

/** Content types a JSON body may come with: clients of the seed APIs send several. */
const JSON_LIKE = /^(application\/([\w.+-]*\+)?json|text\/plain|application\/x-www-form-urlencoded)\b/i;

/**
 * Reads and parses a JSON request body, refusing what is too large (413), not JSON by
 * its declared type (415), or malformed (400). Its size is taken from `budget` until
 * the response ends (the parsed body and the rows made of it live that long).
 */
export async function readJsonBody(
  ctx: Koa.Context,
  budget: ByteBudget,
  limitBytes = DEFAULT_BODY_LIMIT_BYTES,
): Promise<unknown> {
  const type = ctx.get('Content-Type');
  if (type && !JSON_LIKE.test(type)) {
    throw new HttpError(415, 'unsupported_media_type', `the body must be JSON (Content-Type: application/json), not ${type}`);
  }
  const declared = Number(ctx.get('Content-Length') || 0);
  if (declared > limitBytes) throw tooLarge(limitBytes);
  const release = await budget.acquire(declared > 0 ? declared * 8 : limitBytes * 8);
  ctx.res.once('close', release);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) throw tooLarge(limitBytes);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new HttpError(400, 'invalid_json', 'the request body is empty; a JSON object is required');
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `the request body is not valid JSON: ${(err as Error).message}`);
  }
}

const tooLarge = (limitBytes: number): HttpError =>
  new HttpError(413, 'payload_too_large', `the request body is larger than ${limitBytes} bytes`);
