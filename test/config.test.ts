import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

describe('configuration', () => {
  it('has working defaults: the managed local database, auto storage mode, port 8080', () => {
    const config = loadConfig({});
    expect(config.databaseUrl).toBeUndefined();
    expect(config.storageMode).toBe('auto');
    expect(config.port).toBe(8080);
    expect(config.migrateOnStart).toBe(true);
    expect(config.localPg.dataDir).toBe(path.resolve('.data/postgres'));
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('waits 60 s for the database at start and writes no access log unless asked', () => {
    expect(loadConfig({})).toMatchObject({ databaseConnectTimeoutMs: 60_000, logRequests: false });
    expect(loadConfig({ DATABASE_CONNECT_TIMEOUT_MS: '0', LOG_REQUESTS: 'true' })).toMatchObject({
      databaseConnectTimeoutMs: 0,
      logRequests: true,
    });
    expect(() => loadConfig({ DATABASE_CONNECT_TIMEOUT_MS: '-1' })).toThrow(/DATABASE_CONNECT_TIMEOUT_MS/);
    expect(() => loadConfig({ LOG_REQUESTS: 'sometimes' })).toThrow(/LOG_REQUESTS/);
  });

  it('reads every variable and treats an empty one as unset', () => {
    const config = loadConfig({
      PORT: '9000',
      DATABASE_URL: 'postgres://u:p@db:5432/headcount',
      STORAGE_MODE: 'postgres',
      MIGRATE_ON_START: 'false',
      INGEST_MAX_BATCH_ROWS: '100',
      HOST: '',
    });
    expect(config).toMatchObject({
      port: 9000,
      databaseUrl: 'postgres://u:p@db:5432/headcount',
      storageMode: 'postgres',
      migrateOnStart: false,
      host: '127.0.0.1',
    });
    expect(config.ingest.maxBatchRows).toBe(100);
  });

  it.each([
    ['PORT', '70000'],
    ['PORT', 'eighty'],
    ['DATABASE_URL', 'mysql://x@y/z'],
    ['STORAGE_MODE', 'mongodb'],
    ['MIGRATE_ON_START', 'maybe'],
    ['INGEST_MAX_QUEUE_ROWS', '0'],
    ['LOG_LEVEL', 'loud'],
    ['HTTP_BODY_TIMEOUT_MS', '0'],
    // 20,000 rows of 512 bytes do not fit in half of the default 16 MiB.
    ['HTTP_MAX_ROWS_PER_REQUEST', '20000'],
  ])('refuses %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration\\n  ${name}: `));
  });

  it('lets a request become more rows when the body memory is raised with them', () => {
    const config = loadConfig({ HTTP_MAX_ROWS_PER_REQUEST: '20000', HTTP_BODY_MEMORY_BYTES: String(32 * 1024 * 1024) });
    expect(config.http).toMatchObject({ maxRowsPerRequest: 20_000, bodyTimeoutMs: 10_000 });
  });
});
