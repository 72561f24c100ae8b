import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig, loadDotEnv } from '../config.js';
import { findPostgres, startManagedCluster } from '../db/local-cluster.js';
import { psqlInvocation } from '../db/psql.js';
import { createLogger } from '../log.js';

/**
 * `npm run psql [-- psql arguments]`: psql on DATABASE_URL, or on the managed local
 * cluster (started for the session if the service is not running, with the password
 * from its credentials file).
 */
async function main(argv: string[]): Promise<number> {
  loadDotEnv();
  const config = loadConfig();
  const log = createLogger('warn');
  const cluster = config.databaseUrl ? undefined : await startManagedCluster(config.localPg, log);
  try {
    const { args, env } = psqlInvocation(config.databaseUrl ?? cluster!.url, argv);
    // The server's own psql when there is one (it matches the server); else psql on PATH.
    const bundled = await findPostgres(config.localPg.binDir).then(
      (pg) => path.join(pg.binDir, 'psql'),
      () => undefined,
    );
    const psql = bundled && existsSync(bundled) ? bundled : 'psql';
    const child = spawn(psql, args, { stdio: 'inherit', env: { ...process.env, ...env } });
    // Ctrl-C belongs to psql (it cancels the query); this process waits for psql to end.
    process.on('SIGINT', () => {});
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => resolve(code ?? 1));
    });
  } finally {
    await cluster?.stop();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`headcount psql: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof ConfigError ? 2 : 1);
  },
);
