import { z } from 'zod';

/**
 * Every error a client sees has one shape: { error: { code, message, details? } }.
 * Handlers throw these; src/http/middleware.ts turns them into responses.
 */
export const ErrorEnvelope = z
  .object({
    error: z.object({
      code: z.string().meta({ description: 'Stable, machine-readable.', example: 'invalid_query' }),
      message: z.string().meta({ description: 'For people: what is wrong and what to do.' }),
      details: z
        .array(
          z.looseObject({
            parameter: z.string().optional().meta({ description: 'The query parameter or body field at fault.' }),
            message: z.string(),
          }),
        )
        .optional(),
    }),
  })
  .meta({ id: 'Error' });
export interface ErrorDetail {
  parameter?: string;
  message: string;
  [key: string]: unknown;
}

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (code: string, message: string, details?: ErrorDetail[]): HttpError =>
  new HttpError(400, code, message, details);

/** The database or the ingest queue cannot take this now; the client should retry. */
export class UnavailableError extends HttpError {
  override name = 'UnavailableError';
  constructor(code: string, message: string, retryAfterSeconds: number) {
    super(503, code, message, undefined, { 'Retry-After': String(retryAfterSeconds) });
  }
}
