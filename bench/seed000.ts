/**
 * Seed 000's architecture, for comparison in npm run bench: nginx + ngx_lua answering
 * /collect with a Redis PFADD (bench/seed000/). Debian packages nginx-extras (nginx with
 * the Lua module), lua-nginx-redis and redis-server; installed when the bench runs as
 * root, the row skipped with a visible line otherwise.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../src/db/local-cluster.js';
import { ensurePackages } from './system.js';

const DIR = path.resolve('bench/seed000');

export interface Seed000 {
  url: string;
  /** nginx's master (its workers are its children). */
  nginxPid: number;
  redisPid: number;
  stop(): Promise<void>;
}

const stop = (child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> =>
  new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });

async function waitForHttp(url: string, child: ChildProcess, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${what} did not answer ${url}`);
}

/** Starts Redis and nginx on free loopback ports; undefined (with a SKIPPED line) if they cannot be had. */
export async function startSeed000(): Promise<Seed000 | undefined> {
  const ok = await ensurePackages(
    ['nginx-extras', 'lua-nginx-redis', 'redis-server'],
    [
      '/usr/sbin/nginx',
      '/usr/lib/nginx/modules/ngx_http_lua_module.so',
      '/usr/share/lua/5.1/nginx/redis.lua',
      '/usr/bin/redis-server',
    ],
    "seed 000's architecture (nginx + ngx_lua + Redis PFADD)",
  );
  if (!ok) return undefined;
  const prefix = mkdtempSync(path.join(os.tmpdir(), 'headcount-seed000-'));
  const redisPort = await freePort();
  const port = await freePort();
  const redis = spawn('/usr/bin/redis-server', [path.join(DIR, 'redis.conf'), '--port', String(redisPort), '--dir', prefix], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  redis.stderr.on('data', (d: Buffer) => process.stderr.write(`redis: ${d.toString()}`));
  const conf = readFileSync(path.join(DIR, 'nginx.conf'), 'utf8')
    .replaceAll('__PREFIX__', prefix)
    .replaceAll('__PORT__', String(port))
    .replaceAll('__REDIS_PORT__', String(redisPort))
    .replaceAll('__LUA_DIR__', DIR)
    .replaceAll('__WORKERS__', process.env.BENCH_NGINX_WORKERS ?? '1');
  const confFile = path.join(prefix, 'nginx.conf');
  writeFileSync(confFile, conf);
  // -e: the start-up error log before the config's error_log applies (not /var/log).
  const nginx = spawn('/usr/sbin/nginx', ['-p', prefix, '-c', confFile, '-e', 'stderr'], { stdio: ['ignore', 'pipe', 'pipe'] });
  nginx.stderr.on('data', (d: Buffer) => process.stderr.write(`nginx: ${d.toString()}`));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(`${url}/daily_uniques`, nginx, 'nginx');
    const probe = await fetch(`${url}/collect?cid=probe`);
    if (probe.status !== 200) throw new Error(`nginx answered /collect with ${probe.status}`);
  } catch (err) {
    await stop(nginx, 'SIGQUIT');
    await stop(redis);
    rmSync(prefix, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    nginxPid: nginx.pid!,
    redisPid: redis.pid!,
    async stop() {
      await stop(nginx, 'SIGQUIT'); // graceful: workers finish their requests
      await stop(redis);
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}
