import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { type LocalCitusCluster, startThrowawayCitusCluster } from '../../src/db/local-cluster.js';
import { migrate } from '../../src/db/migrate.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { startTestApp, statsAnswers, type TestApp } from '../helpers/app.js';
import { superuserSql } from '../helpers/citus.js';
import { modeAvailable } from '../helpers/db.js';
import { prng } from '../helpers/events.js';
import { daysAgo, isoDate } from '../helpers/time.js';

interface RebalanceStatus {
  state: string;
  details: { tasks?: { state: string; command: string; message?: string; retried?: number }[] };
}

// Needs Citus (npm run setup:citus): skipped when the suite runs no citus mode, and named in
// the run's summary (TEST_REQUIRE_MODES=citus makes a missing Citus an error of the setup).
// A cluster of its own, not the suite's: a third worker and the moves would be under every
// other citus test's feet.
describe.skipIf(!modeAvailable('citus'))('adding a worker to a Citus cluster and rebalancing', () => {
  let cluster: LocalCitusCluster;
  let sql: Sql;
  let admin: Sql;
  let cx: TestApp;
  let pg: TestApp;
  beforeAll(async () => {
    cluster = await startThrowawayCitusCluster({
      prefix: 'hc-citus-rebalance-',
      workers: 2,
      log: createLogger('warn'),
      settings: { fsync: 'off' },
    });
    await migrate({ databaseUrl: cluster.url, storageMode: 'citus', log: silentLogger });
    sql = createSql(cluster.url, { max: 5, applicationName: 'headcount-test' });
    // What the operator runs it as: the cluster's superuser, in the service's database.
    admin = superuserSql(cluster.adminUrl);
    const db = { url: cluster.url, sql, reset: async () => {}, drop: async () => {} };
    [cx, pg] = await Promise.all([startTestApp('citus', {}, db), startTestApp('postgres')]);
  }, 180_000);
  afterAll(async () => {
    await Promise.all([cx?.close(), pg?.close()]);
    await sql?.end();
    await admin?.end();
    await cluster?.stop();
  });

  // 12 sites; 4 of them ("quiet") get no writes once the rebalance starts.
  const sites = Array.from({ length: 12 }, (_, i) => `shop-${i}`);
  const quiet = sites.slice(0, 4);
  const busy = sites.slice(4);
  const rand = prng(2113);
  let next = 0;
  const batch = (size: number, over: string[]) => ({
    events: Array.from({ length: size }, () => {
      const n = next++;
      const kind = ['click', 'pageview', 'signup'][n % 3]!;
      return {
        id: `r${n}`,
        site: over[n % over.length],
        kind,
        user: `u${Math.floor(rand() * 500)}`,
        page: kind === 'pageview' ? `/p${n % 4}` : undefined,
        country: ['PL', 'DE', 'IN', 'BR'][Math.floor(rand() * 4)],
        time: new Date(Date.now() - 60_000 - Math.floor(rand() * 10 * 86_400_000)).toISOString(),
      };
    }),
  });
  const range = () => ({ from: isoDate(daysAgo(12)), to: isoDate(daysAgo(-1)) });
  const shapes = (site: string) => [
    { site, ...range(), granularity: 'day' },
    { site, ...range(), group_by: 'country' },
    { site, ...range(), granularity: 'day', filter: 'country==DE|PL' },
  ];
  const answers = (app: TestApp, over: string[]) => statsAnswers(app, over.flatMap(shapes));
  /**
   * Sends `body` to both apps as a client would: a 503 is resent (the ids make a resend
   * harmless) until acknowledged; postgres mode gets it once, after. Returns the 503s.
   */
  const send = async (body: ReturnType<typeof batch>): Promise<number> => {
    let refused = 0;
    for (;;) {
      const a = await cx.http.post('/v1/events').send(body);
      if (a.status === 503 && ++refused < 20) continue;
      expect(a.status, JSON.stringify(a.body)).toBe(200);
      const { accepted, duplicates, rejected } = a.body as { accepted: number; duplicates: number; rejected: unknown[] };
      expect({ stored: accepted + duplicates, rejected }).toEqual({ stored: body.events.length, rejected: [] });
      break;
    }
    const b = await pg.http.post('/v1/events').send(body);
    expect(b.body).toEqual({ accepted: body.events.length, duplicates: 0, rejected: [] });
    return refused;
  };
  const placements = async () =>
    admin<{ port: number; shards: number }[]>`
      select nodeport as port, count(*)::int as shards
      from citus_shards
      where table_name = 'events'::regclass
      group by nodeport
      order by nodeport
    `;
  const holderOf = async (site: string) => {
    const [row]: [{ port: number }?] = await admin`
      select p.nodeport as port
      from pg_dist_shard_placement p
      where p.shardid = get_shard_id_for_distribution_column('events', ${site}::text)
    `;
    return row!.port;
  };
  const status = async (job: string): Promise<RebalanceStatus> => {
    const [row]: [RebalanceStatus?] = await admin`
      select state::text as state, details from citus_rebalance_status() where job_id = ${job}
    `;
    return row!;
  };

  it('has a key or a replica identity on every distributed table but the day partitions of events', async () => {
    for (let i = 0; i < 3; i++) await send(batch(1000, sites));
    // Every distributed table has a key or a replica identity: the deletes and
    // updates their shards publish while they are copied are applied on the copy
    // (headcount_pending and headcount_visits got theirs in 1796918400000_replica_identities;
    // without, every write of a moving site was refused with 55000 until the move ended).
    const withoutIdentity = await admin<{ name: string }[]>`
      select c.relname::text as name
      from pg_dist_partition p
      join pg_class c on c.oid = p.logicalrelid
      where c.relkind = 'r' and not c.relispartition
        and not (c.relreplident in ('f', 'i')
                 or (c.relreplident = 'd' and exists (select from pg_index i where i.indrelid = c.oid and i.indisprimary)))
      order by 1
    `;
    expect(withoutIdentity).toEqual([]);
  });

  // force_logical first (what docs/operations.md advises), then block_writes (for a cluster
  // without wal_level = logical), each onto a worker of its own.
  for (const mode of ['force_logical', 'block_writes'] as const) {
    it(`moves shards onto a new worker (${mode}) while writes go on, every answer the same and read at once`, async () => {
      await send(batch(1000, sites));
      const before = await answers(cx, sites);
      expect(before).toEqual(await answers(pg, sites));
      expect((await placements()).map((p) => p.port).sort()).toEqual(cluster.workers.map((w) => w.port).sort());

      // The operator's steps (docs/operations.md, "Running on Citus"): a new node with the
      // database made on it, listed by the coordinator.
      const added = await cluster.addWorker();
      await admin`select citus_add_node('127.0.0.1', ${added.port})`;
      const [node] =
        await admin`select noderole::text as role, isactive, hasmetadata from pg_dist_node where nodeport = ${added.port}`;
      expect(node).toEqual({ role: 'primary', isactive: true, hasmetadata: true });
      // Added, it holds no shard yet: only the rebalance moves some there.
      expect((await placements()).map((p) => p.port)).not.toContain(added.port);
      // Citus' default transfer mode (auto) copies by logical replication too, but refuses
      // the events' day partitions: their unique index is not a replica identity ("cannot
      // use logical replication to transfer shards of the relation events_p... since it
      // doesn't have a REPLICA IDENTITY or PRIMARY KEY"). force_logical moves them anyway:
      // events only get inserts.
      await expect(admin`select citus_rebalance_start()`).rejects.toMatchObject({ code: '0A000' });
      const [started]: [{ job: string }?] = await admin`
        select citus_rebalance_start(shard_transfer_mode => ${mode}::citus.shard_transfer_mode)::text as job
      `;
      const job = started!.job;

      // Writes to the busy sites all along, each read back at once (no settling): every
      // acknowledged event is in the next /v1/stats answer, moved shard or not.
      const counted = new Map<string, number>();
      const totalOf = async (site: string) => {
        const res = await cx.http.get('/v1/stats').query({ site, ...range(), granularity: 'total' });
        expect(res.status).toBe(200);
        return (res.body as { data: { events: number }[] }).data[0]!.events;
      };
      for (const site of busy) counted.set(site, await totalOf(site));
      let writesWhileMoving = 0;
      let refused = 0;
      for (;;) {
        const now = await status(job);
        const failing = now.details.tasks?.find((t) => (t.retried ?? 0) > 0);
        // A failed task is retried without end and citus_rebalance_wait() would never return.
        expect(failing, `rebalance task failing: ${JSON.stringify(failing)}`).toBeUndefined();
        const body = batch(40, busy);
        refused += await send(body);
        // The roller and partition maintenance go on too: /readyz would not take the instance out.
        expect(cx.runtime.readiness.failingJobs()).toEqual([]);
        for (const e of body.events) counted.set(e.site!, counted.get(e.site!)! + 1);
        for (const site of busy) expect(await totalOf(site), site).toBe(counted.get(site));
        if (now.state === 'finished') break;
        writesWhileMoving++;
      }
      await admin`select citus_rebalance_wait()`;
      expect((await status(job)).state).toBe('finished');
      console.log(`${mode}: ${writesWhileMoving} batches written while the shards moved, ${refused} answered 503 and resent`);
      // Moves of a shard group each copy some 90 tables (its day partitions and the rest): seconds.
      expect(writesWhileMoving).toBeGreaterThan(0);
      const after = await placements();
      expect(after.map((p) => p.port).sort()).toEqual([...cluster.workers.map((w) => w.port)].sort());
      const moved = after.find((p) => p.port === added.port)!.shards;
      expect(moved).toBeGreaterThan(0);
      // By logical replication a shard group is copied while its writes go on; they wait only
      // for its last catch-up: at most one batch refused per group moved (0 or 1 in all in
      // the runs here, on a loaded machine), where block_writes holds them for each whole
      // copy (7 to 12 answered 503, for 5 batches that went through).
      if (mode === 'force_logical') expect(refused, `${moved} shard groups moved`).toBeLessThanOrEqual(moved);
      // Sites now live on the new worker (the hash of these names puts some there).
      const holders = new Map<string, number>();
      for (const site of sites) holders.set(site, await holderOf(site));
      expect(sites.some((s) => holders.get(s) === added.port)).toBe(true);

      // The quiet sites answer as before, every site as postgres mode fed the same events.
      expect(await answers(cx, quiet)).toEqual(before.slice(0, quiet.length * shapes('').length));
      expect(await answers(cx, sites)).toEqual(await answers(pg, sites));
      // And a write after the move, of every site, is read at once.
      await send(batch(600, sites));
      expect(await answers(cx, sites)).toEqual(await answers(pg, sites));
    }, 300_000);
  }
});
