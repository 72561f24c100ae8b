import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../../src/db/client.js';
import { type LocalCitusCluster, startThrowawayCitusCluster } from '../../src/db/local-cluster.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger, silentLogger } from '../../src/log.js';
import type { TestApp } from '../helpers/app.js';
import { startTestAppOnCluster, superuserSql } from '../helpers/citus.js';
import { modeAvailable } from '../helpers/db.js';

/**
 * The writer's sessions keep the connections a batch over many sites opened to each worker
 * for the next one (src/db/citus-sessions.ts), on a coordinator left at Citus' default
 * of one cached connection per worker: a cluster of its own, so set.
 */
describe.skipIf(!modeAvailable('citus'))('the writer on a coordinator with Citus’ default connection cache', () => {
  let cluster: LocalCitusCluster;
  let admin: Sql;
  let cx: TestApp;
  beforeAll(async () => {
    cluster = await startThrowawayCitusCluster({
      prefix: 'hc-citus-sessions-',
      workers: 2,
      log: createLogger('warn'),
      settings: { fsync: 'off', 'citus.max_cached_conns_per_worker': '1' },
    });
    await migrate({ databaseUrl: cluster.url, storageMode: 'citus', log: silentLogger });
    admin = superuserSql(cluster.adminUrl);
    cx = await startTestAppOnCluster(cluster);
  }, 180_000);
  afterAll(async () => {
    await cx?.close();
    await admin?.end();
    await cluster?.stop();
  });

  it('keeps the connections a batch over 50 sites opened to each worker for the next batch', async () => {
    expect((await admin`select current_setting('citus.max_cached_conns_per_worker') as n`)[0]!.n).toBe('1');
    const events = Array.from({ length: 500 }, (_, i) => ({ site: `shop-${i % 50}`, kind: 'view', user: `u${i}` }));
    for (let round = 0; round < 2; round++) {
      const res = await cx.http.post('/v1/events').send({ events });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
    // What the ingest sessions (one batch at a time: one session) keep open to the
    // workers once their transactions ended: Citus names its connections after the
    // global pid of the coordinator session that opened them.
    const kept = await admin<{ port: number; connections: number }[]>`
      select n.nodeport as port, count(*)::int as connections
      from citus_stat_activity a
      join citus_stat_activity w on w.application_name = 'citus_internal gpid=' || a.global_pid
      join pg_dist_node n on n.nodeid = w.nodeid
      where a.application_name = 'headcount-ingest' and n.groupid <> 0
      group by n.nodeport
    `;
    expect(kept).toHaveLength(2);
    for (const worker of kept) expect(worker.connections, JSON.stringify(kept)).toBeGreaterThan(1);
  }, 120_000);
});
