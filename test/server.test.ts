import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../src/db/local-cluster.js';
import { createTestDatabase, first } from './helpers/db.js';
import { listening, request, SERVER, spawnServer, startServer } from './helpers/server.js';
import { TcpProxy } from './helpers/proxy.js';

const agent = new http.Agent({ keepAlive: true, maxSockets: 32 });
const get = async (port: number, pathAndQuery: string) => {
  const { status, body } = await request(agent, port, 'GET', pathAndQuery);
  return { status, body };
};

describe('the service process', () => {
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    agent.destroy();
    for (const fn of cleanup.reverse()) await fn();
  });

  it('runs on a managed local database that it creates once and that survives a restart, in a folder with a space', async () => {
    const parent = await fs.mkdtemp(path.join(os.tmpdir(), 'headcount-managed-'));
    await fs.chmod(parent, 0o755); // the postgres system user must reach the data folder
    cleanup.push(() => fs.rm(parent, { recursive: true, force: true }));
    await fs.mkdir(path.join(parent, 'my data'), { mode: 0o755 });
    const env = { LOCAL_PG_DATA_DIR: path.join(parent, 'my data', 'pg'), LOCAL_PG_PORT: String(await freePort()) };

    const first = await startServer(env);
    expect(first.earlier + first.output()).toContain('creating a local PostgreSQL cluster');
    for (const cid of ['a', 'b', 'c', 'a']) expect((await get(first.port, `/collect?cid=${cid}`)).status).toBe(200);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    const second = await startServer(env);
    expect(second.earlier + second.output()).not.toContain('creating a local PostgreSQL cluster');
    expect(await get(second.port, '/daily_uniques')).toEqual({ status: 200, body: '3\n' });
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
    await fs.rm(env.LOCAL_PG_DATA_DIR, { recursive: true, force: true }); // stopped by the service
  });

  it('on SIGTERM answers what it accepted, stores all it acknowledged, and exits 0', async () => {
    const db = await createTestDatabase('postgres');
    cleanup.push(() => db.drop());
    const server = await startServer({ DATABASE_URL: db.url, INGEST_FLUSH_DELAY_MS: '20' });
    let answered = 0;
    const requests = Array.from({ length: 400 }, (_, i) =>
      get(server.port, `/collect?cid=user-${i}`).then(
        (res) => {
          if (res.status === 200) answered++;
          return res;
        },
        () => ({ status: 0, body: '' }),
      ),
    );
    // SIGTERM once the first request is acknowledged, while the rest are in flight.
    await vi.waitFor(() => expect(answered).toBeGreaterThan(0), { timeout: 20_000, interval: 5 });
    server.child.kill('SIGTERM');
    const results = await Promise.all(requests);
    expect(await server.exited).toBe(0);
    const acknowledged = results.filter((r) => r.status === 200).length;
    expect(acknowledged).toBeGreaterThan(0);
    for (const r of results) expect([0, 200, 503]).toContain(r.status);
    const { n } = first(await db.sql`select count(*)::int as n from events`);
    expect(n).toBeGreaterThanOrEqual(acknowledged);
    expect(server.output()).toContain('"msg":"stopped"');
  });

  it('loses no acknowledged event when killed with SIGKILL under load', async () => {
    const db = await createTestDatabase('postgres');
    cleanup.push(() => db.drop());
    const server = await startServer({ DATABASE_URL: db.url });
    const acknowledged: string[] = [];
    let next = 0;
    let stop = false;
    const client = async () => {
      while (!stop) {
        const cid = `k${next++}`;
        const res = await get(server.port, `/collect?cid=${cid}`).catch(() => undefined);
        if (res?.status === 200) acknowledged.push(cid);
        if (!res) return; // the process is gone
      }
    };
    const clients = Array.from({ length: 16 }, client);
    await vi.waitFor(() => expect(acknowledged.length).toBeGreaterThan(100), { timeout: 20_000, interval: 10 });
    server.child.kill('SIGKILL');
    stop = true;
    await Promise.all(clients);
    await server.exited;
    expect(acknowledged.length).toBeGreaterThan(100);
    const stored = new Set((await db.sql`select user_id from events`).map((r) => r.user_id as string));
    expect(acknowledged.filter((cid) => !stored.has(cid))).toEqual([]);
  });

  it('serves from WORKERS processes sharing the port, and drains them all on SIGTERM', async () => {
    const db = await createTestDatabase('postgres');
    cleanup.push(() => db.drop());
    const server = await startServer({ DATABASE_URL: db.url, WORKERS: '2', LOG_REQUESTS: 'true', DASHBORD: 'false' });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => get(server.port, `/collect?cid=w${i % 5}`)));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const { n } = first(await db.sql`select count(*)::int as n from events`);
    expect(n).toBe(50);

    // Both workers served some of them (their access log lines say which)...
    const served = (worker: number) =>
      server
        .output()
        .split('\n')
        .filter((l) => l.includes(`"worker":${worker},`) && l.includes('"url":"/collect?cid=')).length;
    expect(served(1)).toBeGreaterThan(0);
    expect(served(2)).toBeGreaterThan(0);
    expect(served(1) + served(2)).toBe(50);
    // ...and one scrape, whichever worker takes it, counts them all.
    for (let scrape = 0; scrape < 2; scrape++) {
      const metrics = await get(server.port, '/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.body).toContain('headcount_ingest_events_acknowledged_total 50\n');
      expect(metrics.body).toContain(
        'headcount_http_request_duration_seconds_count{method="GET",route="/collect",status="200"} 50\n',
      );
      expect(metrics.body).toMatch(/headcount_info\{node="v[\d.]+",worker="1"\} 1/);
      expect(metrics.body).toMatch(/headcount_info\{node="v[\d.]+",worker="2"\} 1/);
      expect(metrics.body).toContain('process_cpu_user_seconds_total');
    }
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(server.output().match(/"msg":"worker stopped"/g)).toHaveLength(2);
    // A mistyped setting is warned about once, by the primary, not by each worker.
    expect(server.output().match(/DASHBORD is not a setting: did you mean DASHBOARD\?/g)).toHaveLength(1);
    expect(server.output()).toContain('"msg":"stopped"');
  });

  it('waits for a database that comes up after it starts, logging each attempt', async () => {
    const db = await createTestDatabase('postgres');
    cleanup.push(() => db.drop());
    const proxy = await TcpProxy.to(db.url);
    cleanup.push(() => proxy.pause());
    // Nothing listens on the proxy's port until the service has tried twice: refused.
    const server = await spawnServer({ DATABASE_URL: proxy.via(db.url), DATABASE_CONNECT_TIMEOUT_MS: '60000' });
    cleanup.push(async () => {
      server.child.kill('SIGKILL');
      await server.exited;
    });
    const attempts = () => server.output().match(/"msg":"the database is not reachable"/g)?.length ?? 0;
    await vi.waitFor(() => expect(attempts()).toBeGreaterThanOrEqual(2), { timeout: 40_000, interval: 50 });
    await proxy.resume();
    await listening(server);
    expect(server.output()).toContain('"code":"ECONNREFUSED"');
    expect(server.output()).toContain('"msg":"the database is reachable"');
    expect((await get(server.port, '/collect?cid=late')).status).toBe(200);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  }, 90_000);

  it('gives up with a clear message when the database is still not up after DATABASE_CONNECT_TIMEOUT_MS', async () => {
    const child = spawn(process.execPath, [SERVER], {
      env: {
        PATH: process.env.PATH,
        PORT: String(await freePort()),
        DATABASE_URL: `postgres://headcount:secret@127.0.0.1:${await freePort()}/headcount`,
        DATABASE_CONNECT_TIMEOUT_MS: '1500',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const started = Date.now();
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(output).toMatch(/the database was not reachable within DATABASE_CONNECT_TIMEOUT_MS=1500 \(\d+ attempts/);
    expect(output).not.toContain('secret');
  });

  it('refuses a bad setting at boot with a message naming the variable', async () => {
    const child = spawn(process.execPath, [SERVER], {
      env: { PATH: process.env.PATH, PORT: 'eighty' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toMatch(/invalid configuration\n\s+PORT: /);
  });

  it('refuses a .env that names something that is not a setting, naming the nearest setting', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'headcount-dotenv-'));
    cleanup.push(() => fs.rm(dir, { recursive: true, force: true }));
    await fs.writeFile(path.join(dir, '.env'), 'DASHBORD=false\n');
    const child = spawn(process.execPath, [SERVER], {
      cwd: dir,
      // Were the .env taken, the service would give up on this database at once (exit 1).
      env: { PATH: process.env.PATH, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', DATABASE_CONNECT_TIMEOUT_MS: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(2);
    expect(stderr).toContain('invalid configuration in .env\n  DASHBORD: not a setting (the nearest is DASHBOARD)');
  });
});
