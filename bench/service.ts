/** The service under test, started from dist/ as `npm start` would, and other child processes. */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSql } from '../src/db/client.js';
import { freePort } from '../src/db/local-cluster.js';
import { createKey } from '../src/v1/auth/keys.js';
import { START_NODE_FLAGS } from '../src/version.js';

export async function waitForOutput(child: ChildProcess, text: string, timeoutMs: number): Promise<void> {
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for "${text}":\n${out}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (out.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
    child.once('exit', (code) => reject(new Error(`exited with ${code} before "${text}":\n${out}`)));
  });
}

export const stopChild = (child: ChildProcess): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });

export interface Service {
  child: ChildProcess;
  url: string;
  pid: number;
}

/** The service from dist/ on `databaseUrl`, with `workers` processes (and `nodeArgs`, e.g. --cpu-prof). */
export async function startService(
  databaseUrl: string,
  workers: number,
  nodeArgs: string[] = [],
  opts: { script?: string; env?: Record<string, string> } = {},
): Promise<Service> {
  const port = await freePort();
  // The flags npm start runs the service with (package.json), then the bench's own.
  const child = spawn(process.execPath, [...START_NODE_FLAGS, ...nodeArgs, opts.script ?? 'dist/server.js'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      LOG_REQUESTS: 'false',
      MIGRATE_ON_START: 'false',
      WORKERS: String(workers),
      // The bench measures ingest itself; /v1 keys and their rate limits are a row of their own to add.
      V1_AUTH: 'none',
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitForOutput(child, 'headcount listening', 60_000);
  child.stdout?.resume();
  return { child, url: `http://127.0.0.1:${port}`, pid: child.pid! };
}

/** "NAME=value,NAME=value" (BENCH_AB_ENV_*, BENCH_PROFILE_ENV) as an environment. */
export const parseEnv = (text: string | undefined): Record<string, string> =>
  Object.fromEntries(
    (text ?? '')
      .split(',')
      .filter(Boolean)
      .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
  );

/**
 * wrk.lua's mode with each word `$KEY` replaced by a new ingest key of site "default" in
 * `databaseUrl` (what a /v1 key and its rate limit cost: "events 1 $KEY").
 */
export async function withBenchKey(databaseUrl: string, mode: string[]): Promise<string[]> {
  if (!mode.includes('$KEY')) return mode;
  const sql = createSql(databaseUrl, { max: 1 });
  try {
    const { key } = await createKey(sql, { scope: 'ingest', site: 'default', name: 'bench' });
    return mode.map((w) => (w === '$KEY' ? key : w));
  } finally {
    await sql.end();
  }
}
