import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runner } from 'node-pg-migrate';
import type { StorageModeSetting } from '../config.js';
import type { Logger } from '../log.js';

/** `migrations/` of the project, whether this file runs from src/ or from dist/. */
export const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'migrations');

export interface MigrateOptions {
  databaseUrl: string;
  storageMode: StorageModeSetting;
  /** The site given to events stored before sites existed (DEFAULT_SITE). */
  defaultSite?: string;
  direction?: 'up' | 'down';
  /** How many migrations; default all for up, one for down. */
  count?: number;
  log: Logger;
}

export async function migrate(opts: MigrateOptions): Promise<string[]> {
  const direction = opts.direction ?? 'up';
  const ran = await runner({
    // Settings reach the migrations as session settings they read with current_setting:
    // headcount.storage_mode, headcount.default_site (both validated by the config).
    databaseUrl: {
      connectionString: opts.databaseUrl,
      options: `-c headcount.storage_mode=${opts.storageMode} -c headcount.default_site=${opts.defaultSite ?? 'default'}`,
    },
    dir: MIGRATIONS_DIR,
    migrationsTable: 'pgmigrations',
    direction,
    count: opts.count ?? (direction === 'up' ? Infinity : 1),
    checkOrder: true,
    singleTransaction: true,
    // Several instances may start at once: the later ones wait, then find nothing to do.
    advisoryLockMode: 'wait',
    logger: {
      debug: (msg: string) => opts.log.debug(msg),
      info: (msg: string) => opts.log.debug(msg),
      warn: (msg: string) => opts.log.warn(msg),
      error: (msg: string) => opts.log.error(msg),
    },
  });
  const names = ran.map((m) => m.name);
  if (names.length > 0) opts.log.info({ migrations: names }, `migrated ${direction}`);
  return names;
}
