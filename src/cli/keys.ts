import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, loadDotEnv } from '../config.js';
import { createSql } from '../db/client.js';
import { createLogger } from '../log.js';
import { SITE_PATTERN, SITE_RULE } from '../site.js';
import { createKey, listKeys, revokeKey, type Scope, SCOPES } from '../v1/auth/keys.js';
import { withDatabase } from './database.js';

const USAGE = `usage: npm run keys -- <command>
  create --scope ingest|read|admin [--site SITE] [--name NAME]
                 prints a new key, once: only its hash is kept. ingest and read keys
                 belong to one site (--site, required); admin keys to every site
  list           every key: id, scope, site, name, created, last used, revoked
  revoke ID      the key stops working on every instance within a second
Uses DATABASE_URL, or the managed local cluster when it is unset.`;

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    options: { scope: { type: 'string' }, site: { type: 'string' }, name: { type: 'string' } },
    allowPositionals: true,
  });
  if (command === 'create') {
    const scope = values.scope as Scope | undefined;
    if (!scope || !SCOPES.includes(scope)) throw new ConfigError(`--scope must be ingest, read or admin\n${USAGE}`);
    if (scope !== 'admin' && !values.site)
      throw new ConfigError(`${scope === 'ingest' ? 'an' : 'a'} ${scope} key belongs to one site: give --site\n${USAGE}`);
    if (scope === 'admin' && values.site) throw new ConfigError(`an admin key is for every site: leave out --site\n${USAGE}`);
    if (values.site && !SITE_PATTERN.test(values.site)) {
      throw new ConfigError(`--site ${SITE_RULE}`);
    }
  } else if (command === 'revoke') {
    if (positionals.length !== 1) throw new ConfigError(`revoke takes one key id (see list)\n${USAGE}`);
  } else if (command !== 'list') throw new ConfigError(USAGE);

  loadDotEnv();
  const config = loadConfig();
  const log = createLogger('warn');
  await withDatabase(config, log, async (url) => {
    const sql = createSql(url, { max: 1, applicationName: 'headcount-keys' });
    try {
      if (command === 'create') {
        const { key, record } = await createKey(sql, {
          scope: values.scope as Scope,
          site: values.site ?? null,
          name: values.name ?? '',
        });
        process.stdout.write(
          `${key}\n\nid ${record.id}, scope ${record.scope}, site ${record.site ?? '(every site)'}` +
            `${record.name ? `, name ${record.name}` : ''}. Keep the key now: it is not shown again.\n`,
        );
      } else if (command === 'list') {
        const rows = await listKeys(sql);
        const iso = (d: Date | null) => (d ? d.toISOString().slice(0, 19) + 'Z' : '-');
        process.stdout.write(
          'id            scope   site                 created               last used             revoked               name\n',
        );
        for (const k of rows) {
          process.stdout.write(
            `${k.id}  ${k.scope.padEnd(6)}  ${(k.site ?? '*').padEnd(19)}  ${iso(k.created_at)}  ${iso(k.last_used_at).padEnd(20)}  ${iso(k.revoked_at).padEnd(20)}  ${k.name}\n`,
          );
        }
      } else if (!(await revokeKey(sql, positionals[0]!))) {
        throw new ConfigError(`no key ${positionals[0]} that is not already revoked`);
      } else process.stdout.write(`revoked ${positionals[0]}\n`);
    } finally {
      await sql.end();
    }
  });
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`headcount keys: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof ConfigError ? 2 : 1);
});
