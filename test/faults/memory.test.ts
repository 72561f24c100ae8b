import { readFile } from 'node:fs/promises';
import http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, first, type TestDatabase } from '../helpers/db.js';
import { type Answer, request, type Running, startServer } from '../helpers/server.js';

/** Peak resident memory of a process, in MB (VmHWM). */
const peakRssMb = async (pid: number): Promise<number> =>
  Number(/VmHWM:\s+(\d+)/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

const HOUR_MS = 3_600_000;
const MIB = 1024 * 1024;

/**
 * Memory is bounded by what bodies become, not by requests: 64 concurrent ~1 MiB
 * page-view uploads keep the service's peak RSS within 200 MB, whether their bodies
 * are few long pages or tens of thousands of rows each; every one ends stored or
 * refused with a 4xx (a 503 is retried). Each case runs a service process of its own (peak RSS only grows).
 */
describe('large request bodies at once', () => {
  let db: TestDatabase;
  let server: Running | undefined;
  beforeAll(async () => {
    db = await createTestDatabase('postgres');
  });
  afterEach(async () => {
    if (server?.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    server = undefined;
    await db.sql`truncate events`;
  });
  afterAll(async () => {
    await db?.drop();
  });

  /**
   * Starts the service with `env`, posts every body at once, each again after its
   * Retry-After while it is answered 503 (as a client should), and answers with the last
   * answers and the peak RSS. The outcome does not depend on how fast the machine is.
   */
  async function uploadAtOnce(env: Record<string, string>, bodies: string[]): Promise<{ answers: Answer[]; peak: number }> {
    server = await startServer({ DATABASE_URL: db.url, ...env });
    const agent = new http.Agent({ keepAlive: true, maxSockets: bodies.length });
    const upload = async (body: string): Promise<Answer> => {
      for (let attempt = 1; ; attempt++) {
        const answer = await request(agent, server!.port, 'POST', '/page-views/multi', body);
        if (answer.status !== 503 || attempt === 30) return answer;
        await new Promise((r) => setTimeout(r, Number(answer.headers['retry-after']) * 1000));
      }
    };
    try {
      const answers = await Promise.all(bodies.map(upload));
      return { answers, peak: await peakRssMb(server.child.pid!) };
    } finally {
      agent.destroy();
    }
  }

  it('keeps peak RSS within 200 MB under 64 concurrent 1 MiB uploads of long pages', async () => {
    const hour = new Date(Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS).toISOString();
    const body = (n: number): string => {
      // ~450 pages of 2,000 characters: 1 MiB of JSON. Every eighth upload counts each
      // page once; the others count 0 (parsed and checked whole, nothing to store), so
      // that the database's share of the test stays small.
      const count = n % 8 === 0 ? 1 : 0;
      const pages: string[] = [];
      for (let i = 0, length = 2; length < MIB - 2100; i++) {
        pages.push(JSON.stringify(`/r${n}/p${i}/${'x'.repeat(1990)}`) + ':' + JSON.stringify({ [hour]: count }));
        length += pages.at(-1)!.length + 1;
      }
      return `{${pages.join(',')}}`;
    };
    const bodies = Array.from({ length: 64 }, (_, n) => body(n));
    expect(Math.min(...bodies.map((b) => b.length))).toBeGreaterThan(1000 * 1024);
    const { answers, peak } = await uploadAtOnce({}, bodies);
    expect(answers.map((a) => a.status)).toEqual(bodies.map(() => 200));
    const stored = first(await db.sql`select count(distinct split_part(page, '/', 2))::int as n from events`).n;
    expect(stored).toBe(8);
    console.log(`service peak RSS: ${peak.toFixed(0)} MB after 64 concurrent 1 MiB uploads of long pages`);
    expect(peak).toBeLessThanOrEqual(200);
  }, 120_000);

  /**
   * Issue 17's workload: each body one page with 35,000 distinct times over 48 hours
   * (~0.85 MiB), each counted once.
   */
  const manyTimes = (n: number): string => {
    const start = Math.floor(Date.now() / 1000) * 1000 - 48 * HOUR_MS + 60_000;
    const times: string[] = [];
    for (let i = 0; i < 35_000; i++) {
      const time = new Date(start + Math.floor((i * 48 * HOUR_MS) / 35_000 / 1000) * 1000).toISOString().slice(0, 19) + 'Z';
      times.push(`"${time}":1`);
    }
    return `{"/many/${n}":{${times.join(',')}}}`;
  };

  it('refuses bodies of more rows than a request may hold with 413, within 200 MB, under 64 concurrent uploads of 35,000 times each', async () => {
    const bodies = Array.from({ length: 64 }, (_, n) => manyTimes(n));
    expect(Math.min(...bodies.map((b) => b.length))).toBeGreaterThan(0.8 * MIB);
    const { answers, peak } = await uploadAtOnce({}, bodies);
    expect(answers.map((a) => `${a.status} ${(JSON.parse(a.body) as { error: { code: string } }).error.code}`)).toEqual(
      bodies.map(() => '413 too_many_rows'),
    );
    expect(first(await db.sql`select count(*)::int as n from events`).n).toBe(0);
    console.log(`service peak RSS: ${peak.toFixed(0)} MB after 64 concurrent uploads of 35,000 times (refused: too many rows)`);
    expect(peak).toBeLessThanOrEqual(200);
  }, 120_000);
});
