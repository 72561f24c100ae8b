import fs from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Sql, createSql } from '../../src/db/client.js';
import {
  ensurePostgres,
  freePort,
  type LocalCitusCluster,
  type LocalCluster,
  prepareDatabase,
  startLocalCitusCluster,
  startLocalCluster,
} from '../../src/db/local-cluster.js';
import { migrate } from '../../src/db/migrate.js';
import type { StorageMode } from '../../src/db/storage.js';
import { createLogger, silentLogger } from '../../src/log.js';
import { modeAvailable } from '../helpers/db.js';
import { type Answer, request, startServer } from '../helpers/server.js';
import { daysAgo, seconds } from '../helpers/time.js';

/**
 * PostgreSQL stops (pg_ctl stop -m immediate, as a crash) under load and comes back:
 * every request is answered within 2 s meanwhile (503 + Retry-After, never 500 or 422),
 * the service recovers within 2 s of the server's return, its background jobs resume,
 * SIGTERM afterwards exits 0 in time, and no acknowledged event is missing. 5 s outages
 * here; `npm run test:soak` runs 20 s ones (FAULT_OUTAGE_MS).
 */
const OUTAGE_MS = Number(process.env.FAULT_OUTAGE_MS ?? 5000);
const ANSWER_WITHIN_MS = 2000;
const SHUTDOWN_TIMEOUT_MS = 5000;
const SCENARIO_TIMEOUT_MS = 60_000 + 3 * OUTAGE_MS;

/**
 * The phases a scenario went through, with their times: a scenario that runs out of time
 * fails with vitest's bare "timed out", so a watchdog prints, shortly before that, the
 * phase it is in and what the service logged last (one Node 24 CI run timed out in the
 * Citus scenario, with nothing else to go by).
 */
function phases(name: string) {
  const started = Date.now();
  const passed: string[] = [];
  let output = () => '';
  const watchdog = setTimeout(() => {
    console.error(
      `${name}: still running after ${Date.now() - started} ms; phases: ${passed.join(', ')}; it said last:\n${output().slice(-3000)}`,
    );
  }, SCENARIO_TIMEOUT_MS - 3000);
  return {
    enter(phase: string) {
      passed.push(`${phase} at ${Date.now() - started} ms`);
    },
    watch(server: { output(): string }) {
      output = () => server.output();
    },
    /** The phases so far, for a failure's message. */
    told: () => `phases: ${passed.join(', ')}`,
    done() {
      clearTimeout(watchdog);
    },
  };
}
type Phases = ReturnType<typeof phases>;

interface Sample extends Partial<Answer> {
  startedMs: number;
  endedMs: number;
  kind: 'write' | 'read';
  cid?: string;
  error?: string;
}

describe('PostgreSQL outages under load', () => {
  let cluster: LocalCluster;
  beforeAll(async () => {
    const pg = await ensurePostgres(process.env.LOCAL_PG_BIN_DIR, silentLogger);
    // A short folder name, so that the Unix-domain socket fits in it.
    const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), 'hc-fault-'));
    cluster = await startLocalCluster({
      dataDir,
      port: await freePort(),
      binDir: pg.binDir,
      log: createLogger('warn'),
      throwaway: true,
      settings: { fsync: 'off', max_connections: '100' },
    });
  }, 120_000);
  afterAll(async () => cluster?.stop());

  const scenarios: [StorageMode, 'unix socket' | 'tcp'][] = [
    ['postgres', 'unix socket'],
    ['postgres', 'tcp'],
    ['timescaledb', 'unix socket'],
    ['timescaledb', 'tcp'],
  ];
  for (const [mode, transport] of scenarios) {
    it.skipIf(!modeAvailable(mode))(
      `${mode} mode over ${transport}: fast 503s during a ${OUTAGE_MS / 1000} s outage, recovery, no acknowledged event lost`,
      async () => {
        const name = `fault_${mode}_${transport === 'tcp' ? 'tcp' : 'unix'}`;
        const at = phases(name);
        const admin = createSql(cluster.adminUrl, { max: 1 });
        await admin`drop database if exists ${admin(name)} with (force)`;
        await admin.end();
        await prepareDatabase(cluster.adminUrl, name, { timescaledb: mode === 'timescaledb' });
        let url = cluster.urlOf(name);
        if (transport === 'tcp') url = url.replace(/\?.*$/, '');
        else expect(url).toContain('?host=');
        at.enter('migrate');
        await migrate({ databaseUrl: url, storageMode: mode, log: silentLogger });

        await underOutage(url, mode, cluster, at).finally(() => at.done());
      },
      SCENARIO_TIMEOUT_MS,
    );
  }
});

// Needs Citus (npm run setup:citus); a cluster of its own, as a worker stops here.
describe.skipIf(!modeAvailable('citus'))('a Citus worker outage under load', () => {
  let cluster: LocalCitusCluster;
  beforeAll(async () => {
    const dataDir = path.join(await fs.mkdtemp(path.join(os.tmpdir(), 'hc-fault-citus-')), 'c');
    await fs.chmod(path.dirname(dataDir), 0o755);
    cluster = await startLocalCitusCluster({
      dataDir,
      port: await freePort(),
      workerPorts: 'free',
      workers: 2,
      log: createLogger('warn'),
      throwaway: true,
      settings: { fsync: 'off' },
    });
  }, 120_000);
  afterAll(async () => {
    await cluster?.stop();
    if (cluster) await fs.rm(path.dirname(cluster.dataDir), { recursive: true, force: true });
  });

  it(
    `citus mode: fast 503s while the worker holding the site is down ${OUTAGE_MS / 1000} s, recovery, no acknowledged event lost`,
    async () => {
      const at = phases('fault_citus');
      const url = await cluster.prepare('fault_citus');
      at.enter('migrate');
      await migrate({ databaseUrl: url, storageMode: 'citus', log: silentLogger });
      // The seed APIs' site (default) is on one shard: that shard's worker stops.
      const sql = createSql(url, { max: 1 });
      const [holder] = await sql<{ port: number }[]>`
        select n.nodeport as port
        from pg_dist_placement p join pg_dist_node n using (groupid)
        where p.shardid = get_shard_id_for_distribution_column('events_minutely_parts', 'default')
      `;
      await sql.end();
      const worker = cluster.workers.find((w) => w.port === holder!.port)!;
      await underOutage(url, 'citus', worker, at).finally(() => at.done());
    },
    SCENARIO_TIMEOUT_MS,
  );

  it('citus mode: a worker down fails only the requests of its own sites', async () => {
    const url = await cluster.prepare('fault_citus_sites');
    await migrate({ databaseUrl: url, storageMode: 'citus', log: silentLogger });
    const sql = createSql(url, { max: 1 });
    const holders = await sql<{ site: string; port: number }[]>`
      select s.site, n.nodeport as port
      from unnest(${Array.from({ length: 40 }, (_, i) => `shop-${i}`)}::text[]) s(site)
      join pg_dist_placement p on p.shardid = get_shard_id_for_distribution_column('events', s.site)
      join pg_dist_node n using (groupid)
    `;
    const [stopped, running] = cluster.workers;
    // Two sites on each worker.
    const lost = holders
      .filter((h) => h.port === stopped!.port)
      .map((h) => h.site)
      .slice(0, 2);
    const kept = holders
      .filter((h) => h.port === running!.port)
      .map((h) => h.site)
      .slice(0, 2);
    expect([lost.length, kept.length]).toEqual([2, 2]);
    const server = await startServer({ DATABASE_URL: url, V1_AUTH: 'none', SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS) });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
    const samples: (Sample & { site: string })[] = [];
    let stopLoad = false;
    let next = 0;
    // 16 clients, 4 to each site, one event a request: the writer gets them together.
    const client = async (c: number) => {
      const site = [...lost, ...kept][c % 4]!;
      while (!stopLoad) {
        const id = `e${next++}`;
        const body = JSON.stringify({ events: [{ id, site, kind: 'view', user: `u${c}` }] });
        const startedMs = Date.now();
        try {
          const answer = await request(agent, server.port, 'POST', '/v1/events', body);
          samples.push({ ...answer, startedMs, endedMs: Date.now(), kind: 'write', cid: id, site });
        } catch (err) {
          samples.push({ startedMs, endedMs: Date.now(), kind: 'write', cid: id, site, error: String(err) });
        }
        if (samples.at(-1)!.status === 503) await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      const load = Promise.all(Array.from({ length: 16 }, (_, c) => client(c)));
      await new Promise((r) => setTimeout(r, 1000));
      const crashing = Date.now();
      await stopped!.crash();
      const downAt = Date.now();
      // One CI run (Node 20) waited ~58 s for pg_ctl stop -m immediate of the worker here.
      const crashTold =
        `the crash (pg_ctl stop -m immediate) took ${downAt - crashing} ms` +
        (downAt - crashing > 5000 ? `; the worker's log ended:\n${await logTail(stopped!.dataDir)}` : '');
      await new Promise((r) => setTimeout(r, 3000));
      const restartingAt = Date.now();
      await stopped!.restart();
      const upAt = Date.now();
      await new Promise((r) => setTimeout(r, 2000));
      stopLoad = true;
      await load;

      const during = samples.filter((s) => s.startedMs > downAt + 200 && s.endedMs < restartingAt);
      const keptDuring = during.filter((s) => kept.includes(s.site));
      const lostDuring = during.filter((s) => lost.includes(s.site));
      const timeline = samples
        .filter((s) => lost.includes(s.site) && s.startedMs > downAt - 500)
        .map((s) => `${s.startedMs - downAt}+${s.endedMs - s.startedMs} ${s.status ?? s.error}`)
        .join(', ');
      expect(keptDuring.length).toBeGreaterThan(20);
      expect(lostDuring.length, `its sites' requests from the crash on (ms after it + ms taken): ${timeline}`).toBeGreaterThan(5);
      // The running worker's sites are served all along; the stopped one's refused, fast.
      const notOk = keptDuring.filter((s) => s.status !== 200).map((s) => `${s.site} ${s.status ?? s.error}`);
      expect(
        notOk.slice(0, 5),
        `${notOk.length} of ${keptDuring.length}, the first: ${JSON.stringify(keptDuring.find((s) => s.status !== 200)?.body)}; it said:\n${server.output().slice(-3000)}`,
      ).toEqual([]);
      expect(new Set(lostDuring.map((s) => s.status))).toEqual(new Set([503]));
      // Which requests were slow, and in which phase (once seen at 5.4 s in a loaded CI run, not reproduced alone).
      const slow = samples
        .filter((s) => s.endedMs - s.startedMs > ANSWER_WITHIN_MS)
        .map(
          (s) =>
            `${s.site} ${s.status ?? s.error} started ${s.startedMs - downAt} ms after the crash, took ${s.endedMs - s.startedMs}`,
        )
        .slice(0, 5);
      expect(
        Math.max(...samples.map((s) => s.endedMs - s.startedMs)),
        `${slow.join('; ')} (restart began at ${restartingAt - downAt} ms, done at ${upAt - downAt}); ${crashTold}`,
      ).toBeLessThanOrEqual(ANSWER_WITHIN_MS);
      // Back: its sites are served again, and every acknowledged event is stored.
      const after = samples.filter((s) => lost.includes(s.site) && s.startedMs > restartingAt);
      expect(
        after.some((s) => s.status === 200),
        `${samples.filter((s) => s.startedMs > restartingAt).length} requests after the restart began, restart took ${upAt - restartingAt} ms; its sites': ${after
          .map((s) => `${s.startedMs - restartingAt} ms ${s.status ?? s.error} ${s.body ?? ''}`)
          .slice(-5)
          .join('; ')}; it said:\n${server.output().slice(-2000)}`,
      ).toBe(true);
      const acknowledged = samples.filter((s) => s.status === 200).map((s) => s.cid!);
      const stored = new Set((await sql`select id from events`).map((r) => r.id as string));
      expect(acknowledged.filter((id) => !stored.has(id))).toEqual([]);
    } finally {
      stopLoad = true;
      agent.destroy();
      await sql.end();
      server.child.kill('SIGTERM');
      await server.exited;
    }
  }, 90_000);
});

/** The last lines of the server log of the cluster in `dataDir` (as local-cluster writes it). */
async function logTail(dataDir: string): Promise<string> {
  const text = await fs.readFile(path.join(dataDir, 'server.log'), 'utf8').catch((err: unknown) => String(err));
  return text.split('\n').slice(-20).join('\n');
}

/**
 * The outage itself: the service on `url` under load, `fault.crash()`, OUTAGE_MS, then
 * `fault.restart()`; what every scenario must show (see the head of this file).
 */
async function underOutage(
  url: string,
  mode: StorageMode,
  fault: { crash(): Promise<void>; restart(): Promise<void> },
  phase: Phases,
) {
  phase.enter('start the service');
  const server = await startServer({
    DATABASE_URL: url,
    REFRESH_INTERVAL_MS: '200',
    PARTITION_MAINTENANCE_INTERVAL_MS: '500',
    SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    // The refresher's passes say what they refreshed and which marks they kept: the tail
    // of the log, in a failure's message, shows whether passes still run.
    LOG_LEVEL: 'debug',
  });
  phase.watch(server);
  phase.enter('load');
  const agent = new http.Agent({ keepAlive: true, maxSockets: 24 });
  const samples: Sample[] = [];
  let stopLoad = false;
  let next = 0;
  const worker = async (w: number) => {
    while (!stopLoad) {
      const write = w % 3 !== 0;
      const cid = `c${next++}`;
      const startedMs = Date.now();
      const pathAndQuery = write ? `/collect?cid=${cid}` : '/daily_uniques';
      try {
        const answer = await request(agent, server.port, 'GET', pathAndQuery);
        samples.push({ ...answer, startedMs, endedMs: Date.now(), kind: write ? 'write' : 'read', cid });
      } catch (err) {
        samples.push({ startedMs, endedMs: Date.now(), kind: write ? 'write' : 'read', error: String(err) });
      }
      if (samples.at(-1)!.status === 503) await new Promise((r) => setTimeout(r, 20));
    }
  };
  const load = Promise.all(Array.from({ length: 24 }, (_, w) => worker(w)));

  await new Promise((r) => setTimeout(r, 1000));
  phase.enter('crash');
  await fault.crash();
  const downAt = Date.now();
  phase.enter('down');
  await new Promise((r) => setTimeout(r, OUTAGE_MS));
  const restartingAt = Date.now();
  phase.enter('restart');
  await fault.restart();
  const upAt = Date.now(); // pg_ctl start -w returns a little after the server is ready
  phase.enter('up');
  await new Promise((r) => setTimeout(r, 3000));
  stopLoad = true;
  phase.enter('stop the load');
  await load;
  phase.enter('check the answers');

  // Every request answered, in time, with 200 or 503 + Retry-After (never 500 or 422).
  const failed = samples.filter((s) => s.error);
  // In the failure's own message (CI shows that part): when, how many, the service's exit
  // code and the last things it logged.
  const at = (ms: number) => `${((ms - downAt) / 1000).toFixed(1)} s after the crash`;
  const told =
    failed.length === 0
      ? ''
      : `${failed.length} of ${samples.length} requests failed, the first ${at(failed[0]!.startedMs)}; ` +
        `service exit code ${server.child.exitCode}; it said last:\n${server.output().slice(-2500)}`;
  expect(failed.slice(0, 5), told).toEqual([]);
  const statuses = new Set(samples.map((s) => s.status));
  expect([...statuses].sort()).toEqual([200, 503]);
  for (const s of samples.filter((x) => x.status === 503)) {
    expect(s.headers?.['retry-after']).toBeDefined();
    expect(JSON.parse(s.body!).error.code).toBe('database_unavailable');
  }
  const took = (s: Sample) => s.endedMs - s.startedMs;
  const slow = samples.filter((s) => took(s) > ANSWER_WITHIN_MS);
  const slowTold = slow
    .slice(0, 5)
    .map((s) => `${s.kind} ${s.status} in ${took(s)} ms, sent ${at(s.startedMs)}`)
    .join('; ');
  expect(
    Math.max(...samples.map(took)),
    `${slow.length} answers too slow (${slowTold}); the crash lasted ${restartingAt - downAt} ms; ${phase.told()}; it said last:\n${server.output().slice(-2500)}`,
  ).toBeLessThanOrEqual(ANSWER_WITHIN_MS);
  // Served before, refused during, and back within 2 s of the server's return.
  const during = samples.filter((s) => s.startedMs > downAt && s.endedMs < restartingAt);
  expect(during.length).toBeGreaterThan(20);
  expect(during.filter((s) => s.status !== 503)).toEqual([]);
  for (const kind of ['write', 'read'] as const) {
    const firstOk = samples.find((s) => s.kind === kind && s.startedMs >= restartingAt && s.status === 200);
    expect(firstOk, `a ${kind} after recovery`).toBeDefined();
    expect(firstOk!.endedMs - upAt).toBeLessThanOrEqual(2000);
  }

  // Background jobs resume: /health is ok again (not degraded), and in timescaledb
  // mode a back-dated write's mark is cleared by a refresher pass.
  const db = createSql(url, { max: 1 });
  try {
    expect((await request(agent, server.port, 'GET', `/collect?cid=late&d=${seconds(daysAgo(3))}`)).status).toBe(200);
    phase.enter('wait for /health ok and no marks');
    let health = '';
    let marks = -1;
    // Up to 30 s, a hang guard: a pass takes a few hundred ms. In one CI run 10 s were not
    // enough while another file's statement held a core of the 2 (its plan: see
    // test/db/visits-plans.test.ts); the message then says what the service logged.
    for (let i = 0; i < 150 && (health !== '{"status":"ok"}' || marks !== 0); i++) {
      await new Promise((r) => setTimeout(r, 200));
      health = (await request(agent, server.port, 'GET', '/health')).body;
      marks = mode === 'timescaledb' ? Number((await db`select count(*)::int as n from headcount_stale_hours`)[0]!.n) : 0;
    }
    expect(health, `it said last:\n${server.output().slice(-2500)}`).toBe('{"status":"ok"}');
    const left = mode === 'timescaledb' ? await db`select site, hour::text, version::text from headcount_stale_hours` : [];
    expect(
      marks,
      `marks left: ${JSON.stringify(left)}; ${marks === 0 ? '' : await refresherState(db)}; it said last:\n${server.output().slice(-2500)}`,
    ).toBe(0);

    // SIGTERM exits 0 in time, and every acknowledged event is stored.
    phase.enter('SIGTERM');
    const stopping = Date.now();
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 2000);
    const acknowledged = samples.filter((s) => s.kind === 'write' && s.status === 200).map((s) => s.cid!);
    expect(acknowledged.length).toBeGreaterThan(100);
    const stored = new Set((await db`select user_id from events where kind = 'collect'`).map((r) => r.user_id as string));
    expect(acknowledged.filter((cid) => !stored.has(cid))).toEqual([]);
  } finally {
    agent.destroy();
    await db.end();
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
  }
}

/**
 * What a failure to clear the marks needs to be understood (a CI run kept one for 30 s
 * with no error logged): the sessions and what they wait for, the advisory locks held,
 * the refresh state, and TimescaleDB's invalidation logs as they are.
 */
async function refresherState(db: Sql): Promise<string> {
  const sessions = await db`
    select application_name as app, state, wait_event_type as wait_type, wait_event as wait,
           round(extract(epoch from now() - xact_start))::int as xact_s, left(query, 120) as query
    from pg_stat_activity
    where datname = current_database() and pid <> pg_backend_pid()
  `;
  const locks = await db`
    select l.pid, a.application_name as app, l.objid::int8::text as key, l.mode, l.granted
    from pg_locks l left join pg_stat_activity a on a.pid = l.pid
    where l.locktype = 'advisory'
  `;
  const state = await db`select through::text, materialized_through::text from headcount_refresh_state`;
  // Microseconds since 2000 as TimescaleDB keeps them; the ends of its range (no bound)
  // are no timestamp, and are shown as they are.
  const logs = await db`
    with l as (
      select 'hypertable' as log, hypertable_id as id, lowest_modified_value as low, greatest_modified_value as high
      from _timescaledb_catalog.continuous_aggs_hypertable_invalidation_log
      union all
      select 'materialization', materialization_id, lowest_modified_value, greatest_modified_value
      from _timescaledb_catalog.continuous_aggs_materialization_invalidation_log
    )
    select log, id,
           case when low between -1e16 and 1e16 then _timescaledb_functions.to_timestamp(low)::text else low::text end as low,
           case when high between -1e16 and 1e16 then _timescaledb_functions.to_timestamp(high)::text else high::text end as high
    from l
  `;
  return JSON.stringify({ sessions, locks, state, logs: logs.slice(0, 40) });
}
