import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { freePort } from '../../src/db/local-cluster.js';
import { START_NODE_FLAGS } from '../../src/version.js';

/** The built service (`npm test` builds dist/ first), as `npm start` runs it. */
export const SERVER = path.resolve('dist/server.js');

export interface Running {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * Starts the service process with `env` (plus PATH and a free PORT); resolves once it
 * listens. A port found free can be taken by another process before the service binds it
 * (a CI run lost one that way to another file's process): then again, on another port.
 */
export async function startServer(env: Record<string, string>): Promise<Running & { earlier: string }> {
  let earlier = '';
  for (let attempt = 1; ; attempt++) {
    const running = await spawnServer(env);
    try {
      await listening(running);
      return { ...running, earlier };
    } catch (err) {
      if (attempt >= 3 || !running.output().includes('EADDRINUSE')) throw err;
      // What it did before it lost the port (made a local cluster, say) is not done again.
      earlier += running.output();
    }
  }
}

/** Starts the service process with `env` (plus PATH and a free PORT), not waiting for anything. */
export async function spawnServer(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  const child = spawn(process.execPath, [...START_NODE_FLAGS, SERVER], {
    env: { PATH: process.env.PATH, PORT: String(port), LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, port, output: () => output, exited };
}

/** Resolves once the service says it listens; throws if it exits or takes over a minute. */
export async function listening(server: Running): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!server.output().includes('headcount listening')) {
    if (server.child.exitCode !== null || Date.now() > deadline) throw new Error(`server did not start:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Answer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** One request over a keep-alive agent; a socket error rejects. */
export function request(
  agent: http.Agent,
  port: number,
  method: string,
  pathAndQuery: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        method,
        path: pathAndQuery,
        agent,
        headers: {
          ...headers,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }),
        },
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
