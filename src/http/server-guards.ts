import http, { type RequestListener, type Server } from 'node:http';
import type { Duplex } from 'node:stream';

export interface ServerLimits {
  /** A whole request, headers and body, must arrive within this (slow clients are cut off: 408). */
  requestTimeoutMs: number;
  /** Open connections beyond this are refused at once (the kernel's backlog is not a queue). */
  maxConnections: number;
}

/** A raw HTTP/1.1 answer with the error envelope, for requests Node refuses before Koa sees them. */
function rawError(status: number, reason: string, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  return (
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}

/** Node's parser errors (llhttp codes) as the status a client should see. */
function parserStatus(code: string | undefined): [number, string, string, string] {
  if (code === 'HPE_HEADER_OVERFLOW') {
    return [431, 'Request Header Fields Too Large', 'headers_too_large', 'the request headers are too large'];
  }
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') {
    return [408, 'Request Timeout', 'request_timeout', 'the request did not arrive in time'];
  }
  return [400, 'Bad Request', 'bad_request', 'the request is not valid HTTP/1.1'];
}

/**
 * An http server for `listener` with the limits and answers that Node leaves to the
 * application: a deadline for slow clients, a connection limit, and the error envelope
 * for requests that never reach Koa (malformed request lines or headers, oversized
 * headers, CONNECT).
 */
export function createGuardedServer(listener: RequestListener, limits: ServerLimits): Server {
  const server = http.createServer(
    {
      requestTimeout: limits.requestTimeoutMs,
      headersTimeout: Math.min(limits.requestTimeoutMs, 10_000),
      // How often Node looks for requests past those deadlines (default 30 s, which would
      // let a trickling client hold its connection 30 s longer than the limit).
      connectionsCheckingInterval: Math.min(1000, limits.requestTimeoutMs / 2),
    },
    listener,
  );
  server.maxConnections = limits.maxConnections;
  server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
    if (socket.writable && err.code !== 'ECONNRESET') socket.end(rawError(...parserStatus(err.code)));
    else socket.destroy();
  });
  server.on('connect', (_req, socket: Duplex) => {
    socket.end(rawError(405, 'Method Not Allowed', 'method_not_allowed', 'CONNECT is not allowed'));
  });
  return server;
}
