import supertest from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../../src/app.js';
import { createSql } from '../../src/db/client.js';
import { freePort } from '../../src/db/local-cluster.js';
import { GroupCommitWriter } from '../../src/ingest/writer.js';
import { silentLogger } from '../../src/log.js';
import { startTestApp, testRuntimeConfig, type TestApp } from '../helpers/app.js';

describe('GET /health', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp('postgres');
  });
  afterAll(async () => t?.close());

  it('answers 200 {"status":"ok"} when the database answers', async () => {
    const res = await t.http.get('/health');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('answers 503 with Retry-After when the database is unreachable, and /collect does too', async () => {
    const dead = createSql(`postgres://nobody:x@127.0.0.1:${await freePort()}/nothing`, { max: 1 });
    const writer = new GroupCommitWriter(dead, testRuntimeConfig.ingest, silentLogger);
    const http = supertest(createApp({ sql: dead, writer, site: 'default', retryAfterSeconds: 1, log: silentLogger }).callback());
    const health = await http.get('/health');
    expect(health.status).toBe(503);
    expect(health.headers['retry-after']).toBeDefined();
    expect(health.body.error.code).toBe('database_unavailable');
    const collect = await http.get('/collect').query({ cid: 'a' });
    expect(collect.status).toBe(503);
    expect(collect.body.error.code).toBe('database_unavailable');
    const daily = await http.get('/daily_uniques');
    expect(daily.status).toBe(503);
    await dead.end();
  });
});
