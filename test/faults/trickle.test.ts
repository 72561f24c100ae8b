import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/v1/auth/keys.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';
import { request, type Running, startServer } from '../helpers/server.js';

/** The body deadline the service runs with here: shorter than the victims' window, so tricklers are cut off in it. */
const BODY_TIMEOUT_MS = 2500;
/** How long the victims keep writing while the trickle goes on (two body deadlines). */
const WINDOW_MS = 2 * BODY_TIMEOUT_MS + 1000;
/** The latency the issue asks of every other writer under the trickle. */
const VICTIM_BOUND_MS = 1500;

/**
 * A client that sends the head of a request with a body and then one byte a second, and
 * opens a new connection whenever the service closes it (as the attacker of issue 17
 * did). Records the status line of every answer it got.
 */
function trickler(port: number, head: string, byte: () => string): { answers: string[]; stop: () => void } {
  const answers: string[] = [];
  let stopped = false;
  let socket: net.Socket | undefined;
  let timer: NodeJS.Timeout | undefined;
  const connect = (): void => {
    if (stopped) return;
    const s = net.connect(port, '127.0.0.1');
    socket = s;
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', () => {});
    s.on('close', () => {
      clearInterval(timer);
      if (text) answers.push(text);
      connect();
    });
    s.write(head + byte());
    timer = setInterval(() => s.writable && s.write(byte()), 1000);
  };
  connect();
  return {
    answers,
    stop() {
      stopped = true;
      clearInterval(timer);
      socket?.destroy();
    },
  };
}

describe('slow uploads', () => {
  let db: TestDatabase;
  let server: Running;
  let ingestKey: string;
  let adminKey: string;
  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    server = await startServer({ DATABASE_URL: db.url, HTTP_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS) });
    ingestKey = (await createKey(db.sql, { scope: 'ingest', site: 'page', name: 'embedded in a web page' })).key;
    adminKey = (await createKey(db.sql, { scope: 'admin', site: null, name: 'admin' })).key;
  });
  afterAll(async () => {
    if (server?.child.exitCode === null) {
      server.child.kill('SIGTERM');
      await server.exited;
    }
    await db?.drop();
  });

  it('do not block other writers: they answer 2xx within 1.5 s while tricklers get 408', async () => {
    const multi =
      'POST /page-views/multi HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
      'Content-Length: 1048576\r\n\r\n';
    const chunked =
      `POST /v1/events?key=${ingestKey} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n` +
      'Transfer-Encoding: chunked\r\n\r\n';
    const tricklers = [
      trickler(server.port, multi, () => ' '),
      trickler(server.port, multi, () => ' '),
      trickler(server.port, chunked, () => '1\r\n \r\n'),
    ];
    const agent = new http.Agent({ keepAlive: true });
    const victims: { what: string; status: number; ms: number }[] = [];
    const timed = async (what: string, answer: Promise<{ status: number }>): Promise<void> => {
      const started = performance.now();
      const { status } = await answer;
      victims.push({ what, status, ms: Math.round(performance.now() - started) });
    };
    try {
      const hour = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000).toISOString();
      const end = Date.now() + WINDOW_MS;
      for (let round = 0; Date.now() < end; round++) {
        await Promise.all([
          timed(
            'POST /v1/events (another site, admin key)',
            request(agent, server.port, 'POST', '/v1/events', JSON.stringify({ events: [{ site: 'other', user: `u${round}`, kind: 'click' }] }), {
              Authorization: `Bearer ${adminKey}`,
            }),
          ),
          timed(
            'POST /page-views/single',
            request(agent, server.port, 'POST', '/page-views/single', JSON.stringify({ page: '/p', timestamp: hour })),
          ),
          timed('GET /collect', request(agent, server.port, 'GET', `/collect?cid=c${round}`)),
        ]);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      agent.destroy();
      for (const t of tricklers) t.stop();
    }
    console.log(`victims under the trickle: ${victims.length} answers, slowest ${Math.max(...victims.map((v) => v.ms))} ms`);
    const slowOrFailed = victims.filter((v) => v.status >= 300 || v.ms > VICTIM_BOUND_MS);
    expect(slowOrFailed).toEqual([]);
    expect(victims.length).toBeGreaterThan(9);
    // Each trickler was cut off by the body deadline at least once, with the envelope.
    for (const t of tricklers) {
      expect(t.answers.length).toBeGreaterThan(0);
      for (const answer of t.answers) {
        expect(answer).toMatch(/^HTTP\/1\.1 408 /);
        expect(answer).toContain('"code":"request_timeout"');
      }
    }
  }, 60_000);
});
