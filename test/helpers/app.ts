import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import supertest from 'supertest';
import type TestAgent from 'supertest/lib/agent.js';
import { createApp } from '../../src/app.js';
import type { StorageMode } from '../../src/db/storage.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { type RuntimeConfig, type Runtime, startRuntime } from '../../src/runtime.js';
import { createTestDatabase, type TestDatabase } from './db.js';
import { recordOpenApiViolations } from './openapi.js';

export const TEST_SITE = 'default';

export const testRuntimeConfig: RuntimeConfig = {
  ingest: { maxBatchRows: 5000, maxQueueRows: 100_000, flushDelayMs: 0, maxInflightFlushes: 2, retryAfterSeconds: 1 },
  refreshIntervalMs: 200,
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
   * timescaledb mode: one refresher pass now, so that every bucket before the current
   * 10 minutes is materialized and a back-dated write lands below the watermark. Only
   * ever called *before* the write a test then reads: never between a write and its read.
   */
  materialize(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The real app on a database of `mode` (a fresh one, or `db` to run a second instance
 * on the same database), driven through app.callback().
 */
export async function startTestApp(
  mode: StorageMode,
  overrides: Partial<RuntimeConfig> = {},
  shared?: TestDatabase,
): Promise<TestApp> {
  const db = shared ?? (await createTestDatabase(mode));
  // TEST_LOG_LEVEL=debug shows what the runtime does (refreshes, flushes) while a test runs.
  const log = process.env.TEST_LOG_LEVEL ? createLogger(process.env.TEST_LOG_LEVEL === 'debug' ? 'debug' : 'info') : silentLogger;
  const runtime = await startRuntime(db.sql, db.url, { ...testRuntimeConfig, ...overrides }, log);
  const app = createApp({ sql: db.sql, writer: runtime.writer, site: TEST_SITE, log: silentLogger });
  // Outermost: sees every response as it leaves, errors included.
  const openApiViolations: string[] = [];
  app.middleware.unshift(recordOpenApiViolations(openApiViolations));
  return {
    db,
    runtime,
    http: supertest(app.callback()),
    openApiViolations,
    async materialize() {
      await runtime.refresher?.flush();
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
