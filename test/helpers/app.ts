import supertest from 'supertest';
import type TestAgent from 'supertest/lib/agent.js';
import { createApp } from '../../src/app.js';
import type { StorageMode } from '../../src/db/storage.js';
import { silentLogger } from '../../src/log.js';
import { type RuntimeConfig, type Runtime, startRuntime } from '../../src/runtime.js';
import { createTestDatabase, type TestDatabase } from './db.js';

export const testRuntimeConfig: RuntimeConfig = {
  ingest: { maxBatchRows: 5000, maxQueueRows: 100_000, flushDelayMs: 0, retryAfterSeconds: 1 },
  refreshIntervalMs: 200,
  partitionMaintenanceIntervalMs: 3_600_000,
};

export interface TestApp {
  db: TestDatabase;
  runtime: Runtime;
  http: TestAgent;
  /** Makes back-dated events visible now (timescaledb: refreshes the touched buckets). */
  settle(): Promise<void>;
  close(): Promise<void>;
}

/** The real app on a fresh database of `mode`, driven through app.callback(). */
export async function startTestApp(mode: StorageMode, overrides: Partial<RuntimeConfig> = {}): Promise<TestApp> {
  const db = await createTestDatabase(mode);
  const runtime = await startRuntime(db.sql, { ...testRuntimeConfig, ...overrides }, silentLogger);
  const app = createApp({ sql: db.sql, writer: runtime.writer, log: silentLogger });
  return {
    db,
    runtime,
    http: supertest(app.callback()),
    settle: async () => runtime.refresher?.flush(),
    async close() {
      await runtime.stop();
      await db.drop();
    },
  };
}
