import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { ConfigError, loadConfig, loadDotEnv } from '../config.js';
import { startManagedCluster } from '../db/local-cluster.js';
import { migrate, MIGRATIONS_DIR, serviceSessions } from '../db/migrate.js';
import { createLogger } from '../log.js';

const USAGE = `usage: npm run migrate -- <command>
  up [N]          apply pending migrations (all, or the next N)
  down [N]        revert the last N migrations (default 1); refused while a
                  service is connected to the database, unless --force
  create <name>   write a new TypeScript migration in migrations/
Uses DATABASE_URL, or the managed local cluster when it is unset; STORAGE_MODE
(auto | timescaledb | postgres) picks the storage mode of a first migration.`;

async function main(argv: string[]): Promise<void> {
  const force = argv.includes('--force');
  const [command = 'up', arg] = argv.filter((a) => a !== '--force');
  if (force && command !== 'down') throw new ConfigError(`--force is for down\n${USAGE}`);
  if (command === 'create') {
    if (!arg) throw new ConfigError(`create needs a name\n${USAGE}`);
    const bin = path.resolve(MIGRATIONS_DIR, '..', 'node_modules', '.bin', 'node-pg-migrate');
    execFileSync(bin, ['create', arg, '--migrations-dir', MIGRATIONS_DIR, '--migration-file-language', 'ts'], {
      stdio: 'inherit',
    });
    return;
  }
  if (command !== 'up' && command !== 'down') throw new ConfigError(USAGE);
  const count = arg === undefined ? undefined : Number(arg);
  if (count !== undefined && !(Number.isInteger(count) && count > 0))
    throw new ConfigError(`N must be a positive integer\n${USAGE}`);

  loadDotEnv();
  const config = loadConfig();
  const log = createLogger(config.logLevel === 'silent' ? 'silent' : 'info');
  const cluster = config.databaseUrl ? undefined : await startManagedCluster(config.localPg, log);
  try {
    const databaseUrl = config.databaseUrl ?? cluster!.url;
    if (command === 'down' && !force) {
      // A service on a reverted schema answers 503 not_migrated to everything.
      const sessions = await serviceSessions(databaseUrl);
      if (sessions.length > 0) {
        const who = sessions.map(
          (s) => `${s.application_name} from ${s.client_addr ?? 'a local socket'} since ${s.backend_start.toISOString()}`,
        );
        throw new Error(
          `a service is connected to the database (${sessions.length} session${sessions.length === 1 ? '' : 's'}: ` +
            `${[...new Set(who)].slice(0, 5).join('; ')}); stop it first, or give --force`,
        );
      }
    }
    const ran = await migrate({
      databaseUrl,
      storageMode: config.storageMode,
      defaultSite: config.defaultSite,
      direction: command,
      count,
      log,
    });
    if (ran.length === 0) log.info('no migrations to run');
  } finally {
    await cluster?.stop();
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`headcount migrate: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
