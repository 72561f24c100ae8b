import { hash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createGuardedServer, type ServerLimits } from '../http/server-guards.js';
import type { Logger } from '../log.js';

/** Where /metrics is served and what it needs (METRICS_LISTEN, METRICS_TOKEN). */
export interface MetricsExposure {
  /** Unset: on the service's own listener, beside the API. Set: only on this address. */
  listen: { host: string; port: number } | undefined;
  /** Set: a scrape needs `Authorization: Bearer <token>` (Prometheus: `authorization.credentials`). */
  token: string | undefined;
}

export type Scrape = () => Promise<{ contentType: string; text: string }>;

const digest = (text: string): Buffer => hash('sha256', text, 'buffer');

/**
 * Whether the Authorization header carries the token. Both sides are hashed first, so the
 * comparison takes the same time whatever the lengths, and in constant time.
 */
export function scrapeAllowed(authorization: string | undefined, token: string | undefined): boolean {
  if (token === undefined) return true;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return m !== null && timingSafeEqual(digest(m[1]!), digest(token));
}

const send = (res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}) => {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', ...headers });
  res.end(JSON.stringify({ error: { code, message } }));
};

export const METRICS_UNAUTHORIZED = {
  code: 'missing_metrics_token',
  message: 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>',
  headers: { 'WWW-Authenticate': 'Bearer realm="headcount-metrics"' },
} as const;

/**
 * METRICS_LISTEN: a listener of its own that answers GET /metrics and nothing else, so
 * that the API's port can face the world while the metrics stay on a private address.
 */
export async function startMetricsServer(
  listen: { host: string; port: number },
  token: string | undefined,
  scrape: Scrape,
  limits: ServerLimits,
  log: Logger,
): Promise<Server> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return send(res, 404, 'not_found', 'this listener serves GET /metrics only');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, 'method_not_allowed', 'GET /metrics only', { Allow: 'GET, HEAD' });
    }
    if (!scrapeAllowed(req.headers.authorization, token)) {
      return send(res, 401, METRICS_UNAUTHORIZED.code, METRICS_UNAUTHORIZED.message, METRICS_UNAUTHORIZED.headers);
    }
    const { contentType, text } = await scrape();
    res.writeHead(200, { 'Content-Type': contentType });
    res.end(req.method === 'HEAD' ? undefined : text);
  };
  const server = createGuardedServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, 'metrics scrape failed');
      if (!res.headersSent) send(res, 500, 'internal', 'internal error');
      else res.destroy();
    });
  }, limits);
  server.listen(listen.port, listen.host);
  await new Promise<void>((resolve, reject) => server.once('listening', resolve).once('error', reject));
  log.info(
    { url: `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${listen.port}/metrics` },
    'metrics listening',
  );
  return server;
}
