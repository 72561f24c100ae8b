import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { findPostgres, freePort, type LocalCitusCluster, startThrowawayCitusCluster } from '../../src/db/local-cluster.js';
import { createLogger } from '../../src/log.js';
import { first } from '../helpers/db.js';
import { request, startServer } from '../helpers/server.js';

const citusInstalled = (await findPostgres(process.env.LOCAL_PG_BIN_DIR)).citus;
const citusRequired = (process.env.TEST_REQUIRE_MODES ?? '').split(',').some((m) => m.trim() === 'citus');
if (!citusInstalled) {
  console.log('Citus is not installed: the local Citus cluster test is SKIPPED (npm run setup:citus installs it, as root).');
}

// Needs Citus' library (npm run setup:citus); skipped without it, named in the run's summary,
// unless TEST_REQUIRE_MODES names citus: then the start fails, saying how to install it.
describe.skipIf(!citusInstalled && !citusRequired)('the local Citus cluster (a coordinator and two workers)', () => {
  let cluster: LocalCitusCluster;
  let sql: Sql;
  beforeAll(async () => {
    cluster = await startThrowawayCitusCluster({
      prefix: 'hc-citus-',
      workers: 2,
      log: createLogger('warn'),
      settings: { fsync: 'off' },
    });
    sql = createSql(cluster.url, { max: 2 });
  });
  afterAll(async () => {
    await sql?.end();
    await cluster?.stop();
  });

  it('lists both workers in the coordinator, each in a data folder and on a port of its own, raising the cached connections', async () => {
    const nodes = await sql<{ port: number; role: string }[]>`
      select nodeport as port, noderole::text as role from pg_dist_node where groupid <> 0 order by nodeport
    `;
    expect(nodes.map((n) => n.port).sort()).toEqual(cluster.workers.map((w) => w.port).sort());
    expect(new Set([cluster.dataDir, ...cluster.workers.map((w) => w.dataDir)]).size).toBe(3);
    expect(first(await sql`select current_setting('citus.max_cached_conns_per_worker') as cached`)).toEqual({ cached: '32' });
    // The service's role, no superuser, with password authentication on every node.
    expect(first(await sql`select current_user as role, rolsuper from pg_roles where rolname = current_user`)).toEqual({
      role: 'headcount',
      rolsuper: false,
    });
  });

  it('unions hll sketches held on two workers into the answer one PostgreSQL gives for the same rows', async () => {
    // The same sketches twice: distributed by site, and in a table of the coordinator alone.
    await sql`create table sketches (site text not null, users hll not null)`;
    await sql`select create_distributed_table('sketches', 'site')`;
    await sql`create table sketches_here (site text not null, users hll not null)`;
    const fill = (table: string) => sql`
      insert into ${sql(table)} (site, users)
      select 'site-' || s, hll_add_agg(hll_hash_text('user-' || ((s * 7919 + u) % 30000)))
      from generate_series(1, 24) s, generate_series(1, 2000) u
      group by s
    `;
    await fill('sketches');
    await fill('sketches_here');
    // The sites' rows are on both workers.
    const holders = await sql<{ port: number }[]>`
      select distinct n.nodeport as port
      from sketches s
      join pg_dist_shard_placement n on n.shardid = get_shard_id_for_distribution_column('sketches', s.site)
    `;
    expect(holders.map((h) => h.port).sort()).toEqual(cluster.workers.map((w) => w.port).sort());
    // The union's bytes, not only its estimate: hll unions are lossless and deterministic.
    const union = async (table: string) =>
      first(
        await sql<{ users: number; sketch: string }[]>`
          select round(hll_cardinality(hll_union_agg(users)))::int as users, hll_union_agg(users)::text as sketch
          from ${sql(table)}
        `,
      );
    const distributed = await union('sketches');
    expect(distributed).toEqual(await union('sketches_here'));
    expect(distributed.users).toBeGreaterThan(20_000);
    // Each worker unions its shards' sketches; the coordinator unions theirs.
    const plan = (await sql.unsafe(`explain select hll_union_agg(users) from sketches`)).map((r) => String(r['QUERY PLAN']));
    expect(plan.join('\n')).toMatch(/Task Count: [2-9]/);
  });
});

/** A port p with p + 1 and p + 2 free too: npm start's Citus workers take the next ports. */
async function threeFreePorts(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
  for (;;) {
    const port = await freePort();
    if (port < 65_000 && (await free(port + 1)) && (await free(port + 2))) return port;
  }
}

describe.skipIf(!citusInstalled && !citusRequired)('npm start with LOCAL_CITUS_WORKERS=2', () => {
  const agent = new http.Agent({ keepAlive: true });
  let parent: string;
  beforeAll(async () => {
    parent = await fs.mkdtemp(path.join(os.tmpdir(), 'hc-citus-start-'));
    await fs.chmod(parent, 0o755);
  });
  afterAll(async () => {
    agent.destroy();
    await fs.rm(parent, { recursive: true, force: true });
  });

  it('runs the service on a local Citus cluster in citus mode, made once, kept across a restart', async () => {
    const env = {
      LOCAL_CITUS_WORKERS: '2',
      LOCAL_PG_DATA_DIR: path.join(parent, 'citus'),
      LOCAL_PG_PORT: String(await threeFreePorts()),
    };
    const started = await startServer(env);
    // Also in an attempt that lost its port to another process (one CI run).
    expect((started.earlier + started.output()).match(/creating a local PostgreSQL cluster/g)).toHaveLength(3);
    expect(started.output()).toContain('"storageMode":"citus"');
    const at = Date.now();
    expect((await request(agent, started.port, 'POST', `/analytics?timestamp=${at}&user=ann&event=click`)).status).toBe(204);
    expect((await request(agent, started.port, 'GET', `/analytics?timestamp=${at}`)).body).toBe(
      'unique_users,1\nclicks,1\nimpressions,0\n',
    );
    started.child.kill('SIGTERM');
    expect(await started.exited).toBe(0);

    const again = await startServer(env);
    expect(again.earlier + again.output()).not.toContain('creating a local PostgreSQL cluster');
    expect((await request(agent, again.port, 'GET', `/analytics?timestamp=${at}`)).body).toBe(
      'unique_users,1\nclicks,1\nimpressions,0\n',
    );
    again.child.kill('SIGTERM');
    expect(await again.exited).toBe(0);
  }, 180_000);
});
