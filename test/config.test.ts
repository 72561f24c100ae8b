import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  COMPOSE_VARIABLES,
  ConfigError,
  editDistance,
  loadConfig,
  loadDotEnv,
  misspelledSettings,
  SETTINGS,
} from '../src/config.js';

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

  it('rolls the dimensions up once 2,000 events are queued or 10 s after the last roll, by default', () => {
    expect(loadConfig({})).toMatchObject({
      rollupIntervalMs: 1000,
      rollupMinRows: 2000,
      rollupMaxWaitMs: 10_000,
      foldIntervalMs: 250,
      foldMinWrites: 16,
    });
    expect(loadConfig({ ROLLUP_MIN_ROWS: '1', ROLLUP_MAX_WAIT_MS: '0' })).toMatchObject({ rollupMinRows: 1, rollupMaxWaitMs: 0 });
    expect(() => loadConfig({ ROLLUP_MIN_ROWS: '20001' })).toThrow(/ROLLUP_MIN_ROWS/);
  });

  it('keeps /metrics on the main listener and open by default; METRICS_LISTEN takes host:port, IPv6 bracketed', () => {
    expect(loadConfig({}).metrics).toEqual({ listen: undefined, token: undefined });
    expect(loadConfig({ METRICS_LISTEN: '127.0.0.1:9464' }).metrics.listen).toEqual({ host: '127.0.0.1', port: 9464 });
    expect(loadConfig({ METRICS_LISTEN: '[::1]:9464' }).metrics.listen).toEqual({ host: '::1', port: 9464 });
    expect(loadConfig({ AUTH_FAILURES_BURST: '5' }).authFailures).toEqual({ ratePerSecond: 1, burst: 5 });
  });

  it.each([
    ['PORT', '70000'],
    ['PORT', 'eighty'],
    ['DATABASE_URL', 'mysql://x@y/z'],
    ['STORAGE_MODE', 'mongodb'],
    ['MIGRATE_ON_START', 'maybe'],
    ['INGEST_MAX_QUEUE_ROWS', '0'],
    ['LOG_LEVEL', 'loud'],
    ['METRICS_LISTEN', '9464'],
    ['METRICS_LISTEN', '127.0.0.1:99999'],
    ['METRICS_TOKEN', 'short'],
    ['HTTP_BODY_TIMEOUT_MS', '0'],
    // 20,000 rows of 512 bytes do not fit in half of the default 16 MiB.
    ['HTTP_MAX_ROWS_PER_REQUEST', '20000'],
  ])('refuses %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`^invalid configuration\\n  ${name}: `));
  });

  it('refuses a .env naming something that is not a setting, naming the nearest setting, and loads nothing of it', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'headcount-env-'));
    try {
      const file = path.join(dir, '.env');
      await fs.writeFile(file, 'HTTP_MAX_CONNECTIONS=77\nDASHBORD=false\n# a comment\nSTORGE_MODE=postgres\n');
      expect(() => loadDotEnv(file)).toThrow(ConfigError);
      expect(() => loadDotEnv(file)).toThrow(
        `invalid configuration in ${file}\n  DASHBORD: not a setting (the nearest is DASHBOARD)\n  STORGE_MODE: not a setting (the nearest is STORAGE_MODE)`,
      );
      expect(process.env.HTTP_MAX_CONNECTIONS).toBeUndefined();

      await fs.writeFile(file, 'HTTP_MAX_CONNECTIONS=77\n');
      loadDotEnv(file);
      expect(process.env.HTTP_MAX_CONNECTIONS).toBe('77');
    } finally {
      delete process.env.HTTP_MAX_CONNECTIONS;
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('takes in .env what docker-compose.yml reads from it (docs/operations.md, Docker Compose, has both in one checkout)', async () => {
    const compose = await fs.readFile('docker-compose.yml', 'utf8');
    const read = [...new Set([...compose.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!))];
    expect(read.filter((name) => !SETTINGS.includes(name)).sort()).toEqual([...COMPOSE_VARIABLES].sort());
  });

  it('takes a copy of .env.example as a .env: every name in it is a setting', async () => {
    const example = parseEnv(await fs.readFile('.env.example', 'utf8'));
    expect(Object.keys(example).filter((name) => !SETTINGS.includes(name))).toEqual([]);
  });

  it('names the setting a variable of the environment looks like a misspelling of', () => {
    expect(
      misspelledSettings({ DASHBORD: 'false', port: '9000', DATABSE_URL: 'postgres://x/y', LOG_LEVLE: 'debug', PORT: '1' }),
    ).toEqual([
      'DASHBORD is not a setting: did you mean DASHBOARD?',
      'port is not a setting: did you mean PORT?',
      'DATABSE_URL is not a setting: did you mean DATABASE_URL?',
      'LOG_LEVLE is not a setting: did you mean LOG_LEVEL?',
    ]);
  });

  it('takes no common variable of a shell, a container or a test for a misspelled setting', () => {
    const common =
      'HOME PATH PWD OLDPWD USER LOGNAME SHELL TERM LANG LC_ALL HOSTNAME SHLVL TMPDIR TZ NODE_ENV NODE_OPTIONS ' +
      'PGHOST PGPORT PGUSER PGDATABASE PGPASSWORD HTTP_PROXY HTTPS_PROXY NO_PROXY DEBUG CI KUBERNETES_PORT ' +
      'KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT TEST_DATABASE_URL BENCH_PG_PORT HEADCOUNT_WORKER_DATABASE_URL';
    expect(misspelledSettings(Object.fromEntries(common.split(' ').map((name) => [name, 'x'])))).toEqual([]);
  });

  it('counts an edit as an insertion, a deletion, a replacement or two neighbours swapped', () => {
    expect(editDistance('DASHBOARD', 'DASHBOARD')).toBe(0);
    expect(editDistance('DASHBORD', 'DASHBOARD')).toBe(1);
    expect(editDistance('DASHBAORD', 'DASHBOARD')).toBe(1);
    expect(editDistance('HOME', 'HOST')).toBe(2);
    expect(editDistance('', 'PORT')).toBe(4);
  });

  it('lets a request become more rows when the body memory is raised with them', () => {
    const config = loadConfig({ HTTP_MAX_ROWS_PER_REQUEST: '20000', HTTP_BODY_MEMORY_BYTES: String(32 * 1024 * 1024) });
    expect(config.http).toMatchObject({ maxRowsPerRequest: 20_000, bodyTimeoutMs: 10_000 });
  });

  it('bounds /v1 reads: stats and exports at once, stats answer sizes, slow exports', () => {
    expect(loadConfig({}).reads).toEqual({
      stats: { maxConcurrent: 4, maxConcurrentPerKey: 4, maxRows: 100_000, heavyRows: 10_000, maxRawRows: 2_000_000 },
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
