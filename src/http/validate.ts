import type { z } from 'zod';
import { badRequest, type ErrorDetail } from './errors.js';

/**
 * Parses a request part with a zod schema; a failure becomes a 400 that names each
 * offending parameter and why.
 */
export function parseWith<S extends z.ZodType>(schema: S, input: unknown, what: 'query' | 'body'): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const details: ErrorDetail[] = result.error.issues.map((issue) => ({
    parameter: issue.path.map(String).join('.') || what,
    message: issue.message,
  }));
  const summary = details.map((d) => `${d.parameter} ${d.message}`).join('; ');
  throw badRequest(what === 'query' ? 'invalid_query' : 'invalid_body', summary, details);
}
