import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import supertest from 'supertest';
import type TestAgent from 'supertest/lib/agent.js';
import { type AppDeps, createService } from '../../src/app.js';
import { defaultBodyLimits } from '../../src/http/body.js';
import type { StorageMode } from '../../src/db/storage.js';
import { insertEvents } from '../../src/ingest/writer.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { type RuntimeConfig, type Runtime, startRuntime } from '../../src/runtime.js';
import { floorDay, floorHour } from '../../src/time.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { recordHotOpenApiViolations, recordOpenApiViolations } from './openapi.js';

export const TEST_SITE = 'default';
/** The site of the events that hold the watermarks up (see TestApp.materialize). */
const WATERMARK_SITE = 'zz-watermark';

export const testRuntimeConfig: RuntimeConfig = {
  ingest: {
    maxBatchRows: 5000,
    maxQueueRows: 100_000,
    maxQueueBytes: 64 * 1024 * 1024,
    flushDelayMs: 0,
    maxInflightFlushes: 2,
    parallelFlushMinRows: 256,
    retryAfterSeconds: 1,
    deadlineMs: 1500,
  },
  refreshIntervalMs: 200,
  rollupIntervalMs: 200,
  // Every look rolls what is queued (test/db/roller.test.ts tests the waiting).
  rollupMinRows: 1,
  rollupMaxWaitMs: 0,
  foldIntervalMs: 200,
  foldMinWrites: 1,
  partitionMaintenanceIntervalMs: 3_600_000,
  sketchRetentionDays: 400,
};

export interface TestApp {
  db: TestDatabase;
  runtime: Runtime;
  http: TestAgent;
  /** /v1 responses that do not match the OpenAPI document (see useTestApp). */
  openApiViolations: string[];
  /**
   * timescaledb mode: puts every watermark where a busy site has it, at the start of the
   * current 10 minutes, hour and day, so that a back-dated write lands below it (where
   * it would hide): a watermark is the end of the last materialized bucket holding data,
   * so an event of another site goes into the last complete bucket of each level, then
   * a refresher pass runs. Only ever called *before* the writes a test then reads.
   */
  materialize(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The real app on a database of `mode` (a fresh one, or `db` to run a second instance
 * on the same database), driven through the listener the server runs.
 */
export async function startTestApp(
  mode: StorageMode,
  overrides: Partial<RuntimeConfig> = {},
  shared?: TestDatabase,
  /** The app's own settings: /v1 keys are off unless a test turns them on (test/v1/keys.test.ts). */
  app: Pick<AppDeps, 'v1Auth' | 'rateLimits' | 'authFailures' | 'tracker' | 'now'> = { v1Auth: 'none' },
): Promise<TestApp> {
  const db = shared ?? (await createTestDatabase(mode));
  // TEST_LOG_LEVEL=debug shows what the runtime does (refreshes, flushes) while a test runs.
  const log = process.env.TEST_LOG_LEVEL ? createLogger(process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'info') : silentLogger;
  const runtime = await startRuntime(db.sql, db.url, { ...testRuntimeConfig, ...overrides }, log);
  const service = createService({
    sql: db.sql,
    writer: runtime.writer,
    site: TEST_SITE,
    retryAfterSeconds: 1,
    jobs: runtime.jobs,
    bodies: defaultBodyLimits(1),
    metrics: runtime.metrics,
    readiness: runtime.readiness,
    ...app,
    log: silentLogger,
  });
  // Outermost: sees every response as it leaves, errors included.
  const openApiViolations: string[] = [];
  service.app.middleware.unshift(recordOpenApiViolations(openApiViolations));
  return {
    db,
    runtime,
    // What the server runs: the hot routes in front of Koa.
    http: supertest(recordHotOpenApiViolations(service.listener(), openApiViolations)),
    openApiViolations,
    async materialize() {
      if (!runtime.refresher) return;
      const tenMinutes = Math.floor(Date.now() / 600_000) * 600_000;
      const lastOfEach = [tenMinutes, floorHour(Date.now()), floorDay(Date.now())].map((end) => end - 60_000);
      await insertEvents(
        db.sql,
        lastOfEach.map((timeMs) => ({ site: WATERMARK_SITE, timeMs, kind: 'collect', userId: 'sentinel', page: '', weight: 1 })),
      );
      await runtime.refresher.flush();
    },
    async close() {
      await runtime.stop();
      if (!shared) await db.drop();
    },
  };
}

/**
 * Registers the hooks of a suite that drives one app: started before the suite, closed
 * after it, emptied before each test. The returned object is filled in by then.
 */
export function useTestApp(mode: StorageMode, opts: { resetEach?: boolean } = {}): TestApp {
  const t = {} as TestApp;
  beforeAll(async () => {
    Object.assign(t, await startTestApp(mode));
  });
  afterAll(async () => t.close?.());
  afterEach(() => {
    // Every /v1 response of the test matches the OpenAPI document.
    const found = t.openApiViolations.splice(0);
    expect(found).toEqual([]);
  });
  if (opts.resetEach !== false) {
    beforeEach(async () => {
      await t.db.reset();
    });
  }
  return t;
}

/** Asserts a 400 in the error envelope whose details name `parameter` with a matching message. */
export function expectInvalid(
  res: { status: number; body: { error?: { code: string; details?: unknown[] } } },
  code: 'invalid_query' | 'invalid_body',
  parameter: string,
  message: RegExp,
): void {
  expect(res.status).toBe(400);
  expect(res.body.error?.code).toBe(code);
  expect(res.body.error?.details).toContainEqual({ parameter, message: expect.stringMatching(message) });
}

/** The bodies of `GET /v1/stats` for each of `queries`, in order: each must answer 200. */
export async function statsAnswers(app: TestApp, queries: Record<string, string | undefined>[]): Promise<unknown[]> {
  const all: unknown[] = [];
  for (const q of queries) {
    const res = await app.http.get('/v1/stats').query(q);
    expect(res.status, `${JSON.stringify(q)}: ${JSON.stringify(res.body)}`).toBe(200);
    all.push(res.body);
  }
  return all;
}
