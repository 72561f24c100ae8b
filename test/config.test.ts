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
  ])('refuses %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration\\n  ${name}: `));
  });

  it('bounds /v1 reads: stats and exports at once, stats answer sizes, slow exports', () => {
    expect(loadConfig({}).reads).toEqual({
      stats: { maxConcurrent: 4, maxConcurrentPerKey: 4, maxRows: 100_000, heavyRows: 10_000 },
      export: {
        maxConcurrent: 2,
        maxConcurrentPerKey: 1,
        minBytesPerSecond: 65_536,
        slowWindowMs: 30_000,
        maxDurationMs: 1_800_000,
      },
    });
    expect(loadConfig({ EXPORT_MIN_BYTES_PER_SECOND: '0', STATS_MAX_ROWS: '5000' }).reads).toMatchObject({
      stats: { maxRows: 5000 },
      export: { minBytesPerSecond: 0 },
    });
    // Stats and exports must leave the pool a connection for key lookups and seed reads.
    expect(() => loadConfig({ DATABASE_POOL_MAX: '6' })).toThrow(
      /STATS_MAX_CONCURRENT \(4\) \+ EXPORT_MAX_CONCURRENT \(2\) must be less than DATABASE_POOL_MAX \(6\)/,
    );
    expect(() => loadConfig({ STATS_MAX_ROWS: '0' })).toThrow(/STATS_MAX_ROWS/);
  });
});
