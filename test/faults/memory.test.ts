import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, first, type TestDatabase } from '../helpers/db.js';
import { request, type Running, startServer } from '../helpers/server.js';

/** Peak resident memory of a process, in MB (VmHWM). */
const peakRssMb = async (pid: number): Promise<number> =>
  Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

/**
 * Memory is bounded by bytes, not by requests or rows: 64 concurrent 1 MiB page-view
 * uploads keep the service's peak RSS within 200 MB (bodies in flight take from a memory
 * budget; the writer's queue is bounded in bytes), and every one is answered.
 */
describe('large request bodies at once', () => {
  let db: TestDatabase;
  let server: Running;
  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    server = await startServer({ DATABASE_URL: db.url });
  });
  afterAll(async () => {
    if (server?.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await db?.drop();
  });

  it('keeps peak RSS within 200 MB under 64 concurrent 1 MiB uploads', async () => {
    const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000).toISOString();
    const body = (n: number): string => {
      // ~450 pages of 2,000 characters: 1 MiB of JSON. Every eighth upload counts each
      // page once; the others count 0 (parsed and checked whole, nothing to store), so
      // that the database's share of the test stays small.
      const count = n % 8 === 0 ? 1 : 0;
      const pages: Record<string, Record<string, number>> = {};
      for (let i = 0; JSON.stringify(pages).length < 1024 * 1024 - 2100; i++) {
        pages[`/r${n}/p${i}/${'x'.repeat(1990)}`] = { [hour]: count };
      }
      return JSON.stringify(pages);
    };
    const bodies = Array.from({ length: 64 }, (_, n) => body(n));
    expect(Math.min(...bodies.map((b) => b.length))).toBeGreaterThan(1000 * 1024);
    const before = await peakRssMb(server.child.pid!);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    try {
      const answers = await Promise.all(bodies.map((b) => request(agent, server.port, 'POST', '/page-views/multi', b)));
      const statuses = answers.map((a) => a.status);
      // Every upload answered: stored, or told to retry when the budget stayed full too long.
      expect(statuses.filter((s) => s !== 200 && s !== 503)).toEqual([]);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(32);
      const stored = first(await db.sql`select count(distinct split_part(page, '/', 2))::int as n from events`).n;
      expect(stored).toBe(statuses.filter((s, n) => s === 200 && n % 8 === 0).length);
    } finally {
      agent.destroy();
    }
    const peak = await peakRssMb(server.child.pid!);
    console.log(`service peak RSS: ${before.toFixed(0)} MB before, ${peak.toFixed(0)} MB after 64 concurrent 1 MiB uploads`);
    expect(peak).toBeLessThanOrEqual(200);
  }, 120_000);
});
