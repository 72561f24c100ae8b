import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sql } from '../../src/db/client.js';
import { type LocalCitusCluster, startThrowawayCitusCluster } from '../../src/db/local-cluster.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger, silentLogger } from '../../src/log.js';
import type { TestApp } from '../helpers/app.js';
import { startTestAppOnCluster, superuserSql } from '../helpers/citus.js';
import { modeAvailable } from '../helpers/db.js';
import { TcpProxy } from '../helpers/proxy.js';
import { daysAgo, isoDate } from '../helpers/time.js';

/**
 * A batch over sites of two workers commits on both by two-phase commit: PREPARE
 * TRANSACTION on each worker, the coordinator's own commit, then COMMIT PREPARED on each.
 * Here the connection to one worker is reset when the coordinator sends it COMMIT
 * PREPARED (a TCP proxy between them: the worker is listed in Citus' metadata at the
 * proxy's port, without SSL so that the proxy reads the commands). Citus then only warns
 * ("failed to commit transaction on ...") and the statement succeeds: the batch is stored
 * (the coordinator's pg_dist_transaction says so), but the worker's rows stay in a
 * prepared transaction, invisible, until Citus recovers it (every minute). The service
 * acknowledged them; the next read must count them. With the worker then unreachable,
 * the service cannot recover it: the batch must not be acknowledged, and once the worker
 * is back neither its count nor the next write of its rows (the prepared transaction
 * holds their locks) may wait for Citus' own recovery.
 */
describe.skipIf(!modeAvailable('citus'))('a worker lost between PREPARE and COMMIT PREPARED', () => {
  let cluster: LocalCitusCluster;
  let proxy: TcpProxy;
  let admin: Sql;
  let worker: Sql;
  let cx: TestApp;
  /** What to do when the coordinator next sends the proxied worker COMMIT PREPARED. */
  let atCommitPrepared: 'pass' | 'reset' | 'unreachable' = 'pass';
  let cuts = 0;
  let back: Promise<void> | undefined;
  /** The backends of the service's ingest connections on the coordinator. */
  let writers: number[] = [];
  beforeAll(async () => {
    cluster = await startThrowawayCitusCluster({
      prefix: 'hc-citus-2pc-',
      workers: 2,
      log: createLogger('warn'),
      settings: { fsync: 'off', 'citus.node_conninfo': 'sslmode=disable' },
    });
    const proxied = cluster.workers[1]!;
    proxy = await TcpProxy.start(proxied.port, (chunk) => {
      // Only the service's writes: the roller commits on both workers too. A gid is
      // citus_<group>_<coordinator backend's pid>_<transaction>_<connection>.
      if (atCommitPrepared === 'pass' || !chunk.includes('COMMIT PREPARED')) return 'pass';
      if (!writers.some((pid) => chunk.includes(`citus_0_${pid}_`))) return 'pass';
      const verdict = atCommitPrepared;
      atCommitPrepared = 'pass';
      cuts++;
      if (verdict === 'reset') return 'reset';
      // The worker gone for 1.5 s: every connection to it reset (this one too, its
      // COMMIT PREPARED dropped), new ones refused.
      void proxy.pause();
      back = new Promise((resolve) => setTimeout(resolve, 1500)).then(() => proxy.resume());
      return 'drop';
    });
    admin = superuserSql(cluster.adminUrl);
    await admin`select citus_update_node(nodeid, '127.0.0.1', ${proxy.port}) from pg_dist_node where nodeport = ${proxied.port}`;
    // citus_update_node leaves the nodes' metadata to Citus' maintenance daemon, and DDL
    // (the migrations) is refused until it has synced it ("… is a metadata node, but is
    // out of sync": one CI run). Up to 30 s, a hang guard.
    for (let i = 0; i < 300; i++) {
      const [state] = await admin<
        { synced: boolean }[]
      >`select bool_and(metadatasynced) as synced from pg_dist_node where hasmetadata`;
      if (state!.synced) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await admin`select nodeport from pg_dist_node where hasmetadata and not metadatasynced`).length).toBe(0);
    worker = superuserSql(proxied.adminUrl);
    await migrate({ databaseUrl: cluster.url, storageMode: 'citus', log: silentLogger });
    cx = await startTestAppOnCluster(cluster);
  }, 180_000);
  afterAll(async () => {
    await cx?.close();
    await admin?.end();
    await worker?.end();
    // The cluster first: its nodes' connections through the proxy then end on their own.
    await cluster?.stop();
    await proxy?.close();
  });

  // Three sites on each worker, the first three on the proxied one.
  let sites: string[] = [];
  let counted = new Map<string, number>();
  let next = 0;
  const batch = () =>
    Array.from({ length: 60 }, () => {
      const n = next++;
      return { id: `e${n}`, site: sites[n % sites.length]!, kind: 'view', user: `u${n % 17}` };
    });
  const count = (events: { site: string }[]) => {
    for (const e of events) counted.set(e.site, counted.get(e.site)! + 1);
  };
  const send = async () => {
    const events = batch();
    const res = await cx.http.post('/v1/events').send({ events });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ accepted: events.length, duplicates: 0, rejected: [] });
    count(events);
  };
  const stats = (site: string) =>
    cx.http.get('/v1/stats').query({ site, from: isoDate(daysAgo(1)), to: isoDate(daysAgo(-1)), granularity: 'total' });
  const totals = async () => {
    const out = new Map<string, number>();
    for (const site of sites) {
      const res = await stats(site);
      expect(res.status).toBe(200);
      out.set(site, (res.body as { data: { events: number }[] }).data[0]!.events);
    }
    return out;
  };
  const ingestBackends = async () =>
    (await admin<{ pid: number }[]>`select pid from pg_stat_activity where application_name = 'headcount-ingest'`).map(
      (r) => r.pid,
    );
  const prepared = () => worker`select gid from pg_prepared_xacts where gid like 'citus\\_%'`;

  it('counts the acknowledged events of the worker whose commit failed in the very next read', async () => {
    const holders = await admin<{ site: string; port: number }[]>`
      select s.site, p.nodeport as port
      from unnest(${Array.from({ length: 40 }, (_, i) => `shop-${i}`)}::text[]) s(site)
      join pg_dist_shard_placement p on p.shardid = get_shard_id_for_distribution_column('events', s.site)
    `;
    sites = [
      ...holders.filter((h) => h.port === proxy.port).slice(0, 3),
      ...holders.filter((h) => h.port !== proxy.port).slice(0, 3),
    ].map((h) => h.site);
    expect(sites).toHaveLength(6);
    counted = new Map(sites.map((s) => [s, 0]));

    await send();
    expect(await totals()).toEqual(counted);

    writers = await ingestBackends();
    atCommitPrepared = 'reset';
    await send();
    expect(cuts).toBe(1);
    // Read at once, no settling: every acknowledged event counted.
    expect(await totals()).toEqual(counted);
    // Nothing left prepared on the worker.
    expect(await prepared()).toEqual([]);
    // And writes go on.
    await send();
    expect(await totals()).toEqual(counted);
  }, 120_000);

  it('answers 503 while that worker cannot be reached, and counts the batch, its locks released, as soon as it is back', async () => {
    expect(sites).toHaveLength(6);
    writers = await ingestBackends();
    atCommitPrepared = 'unreachable';
    const events = batch();
    const res = await cx.http.post('/v1/events').send({ events });
    expect(cuts).toBe(2);
    // Not acknowledged: the reads could not count it yet.
    expect(res.status, JSON.stringify(res.body)).toBe(503);
    expect(res.body.error.code).toBe('database_unavailable');
    // Stored all the same (the coordinator committed): the one case where a 503 does not
    // mean "not stored" (docs/operations.md).
    count(events);
    // While the worker is away its sites' reads are refused, not answered short.
    expect((await stats(sites[0]!)).status).toBe(503);
    await back;
    // Back: the next write of the same rows is answered 200, not held by the prepared
    // transaction's locks until its statement_timeout (503: Citus' own recovery runs once a
    // minute); the service's recovery, retried meanwhile, released them. The next read
    // counts the batch, nothing settled or recovered by hand.
    await send();
    expect(await totals()).toEqual(counted);
    expect(await prepared()).toEqual([]);
  }, 120_000);
});
