import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import * as addFormatsModule from 'ajv-formats';
import type { RequestListener, ServerResponse } from 'node:http';
import type Koa from 'koa';
import { openApiDocument } from '../../src/v1/openapi/document.js';

// ajv-formats is CommonJS: under ESM its function is the module's default export.
const addFormats = addFormatsModule.default as unknown as (ajv: Ajv2020) => void;

const DOCUMENT_ID = 'https://headcount.invalid/openapi.json';
const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addSchema({ ...openApiDocument(), $id: DOCUMENT_ID });

const pointer = (...parts: string[]) => parts.map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/');
const validators = new Map<string, ValidateFunction>();

interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

/** The document's path for a request's: `/v1/sites/{site}` for `/v1/sites/shop`; itself when none has a parameter that fits. */
function documentedPath(paths: string[], path: string): string {
  if (paths.includes(path)) return path;
  const segments = path.split('/');
  return (
    paths.find((p) => {
      const parts = p.split('/');
      return parts.length === segments.length && parts.every((part, i) => /^\{\w+\}$/.test(part) || part === segments[i]);
    }) ?? path
  );
}

/**
 * Why a response of the app does not match the OpenAPI document (null when it does):
 * its status must be documented for the path and method, its content type too, and a
 * JSON body must validate against the schema.
 */
export function openApiViolation(
  method: string,
  path: string,
  status: number,
  contentType: string,
  body: unknown,
  streamed: boolean,
): string | null {
  const doc = openApiDocument() as unknown as { paths: Record<string, Record<string, Operation>> };
  path = documentedPath(Object.keys(doc.paths), path);
  const op = doc.paths[path]?.[method.toLowerCase()];
  const where = `${method} ${path} ${status}`;
  if (!op) return `${where}: not in the document`;
  const response = op.responses?.[String(status)];
  if (!response) return `${where}: status not documented`;
  if (!response.content) return body == null || body === '' ? null : `${where}: documented without a body, answered one`;
  const type = contentType.split(';')[0]!.trim();
  if (!response.content[type])
    return `${where}: content type ${type} not documented (${Object.keys(response.content).join(', ')})`;
  if (streamed || type !== 'application/json') return null;
  const key = `${method} ${path} ${status}`;
  let validate = validators.get(key);
  if (!validate) {
    validate = ajv.compile({
      $ref: `${DOCUMENT_ID}#/${pointer('paths', path, method.toLowerCase(), 'responses', String(status), 'content', type, 'schema')}`,
    });
    validators.set(key, validate);
  }
  return validate(body) ? null : `${where}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body).slice(0, 300)}`;
}

/** Middleware for tests: every /v1 response is checked against the document; problems go to `violations`. */
export function recordOpenApiViolations(violations: string[]): Koa.Middleware {
  return async (ctx, next) => {
    await next();
    answeredByKoa.add(ctx.res);
    if (!ctx.path.startsWith('/v1/')) return;
    const body: unknown = ctx.body;
    const streamed = typeof (body as { pipe?: unknown } | null)?.pipe === 'function';
    const problem = openApiViolation(ctx.method, ctx.path, ctx.status, ctx.response.type, body, streamed);
    if (problem) violations.push(problem);
  };
}

/** Responses Koa's middleware checked: recordHotOpenApiViolations leaves them alone. */
const answeredByKoa = new WeakSet<ServerResponse>();

/**
 * The same check for the responses a listener sends without Koa (the hot routes,
 * src/hot-routes.ts): the JSON text each /v1 response ends with, once it has finished.
 */
export function recordHotOpenApiViolations(listener: RequestListener, violations: string[]): RequestListener {
  return (req, res) => {
    const path = (req.url ?? '').split('?')[0]!;
    if (path.startsWith('/v1/')) {
      const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
      let text = '';
      res.end = ((...args: unknown[]) => {
        if (typeof args[0] === 'string') text = args[0];
        return end(...args);
      }) as typeof res.end;
      res.once('finish', () => {
        if (answeredByKoa.has(res)) return;
        const type = String(res.getHeader('Content-Type') ?? '');
        const body: unknown = type.startsWith('application/json') && text !== '' ? JSON.parse(text) : text;
        const problem = openApiViolation(req.method ?? '', path, res.statusCode, type, body, false);
        if (problem) violations.push(problem);
      });
    }
    listener(req, res);
  };
}
