import { expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { AggregateRefresher, REFRESH_LOCK_KEY, type RefreshPass, readMarks, refreshAggregates } from '../../src/db/refresher.js';
import { silentLogger } from '../../src/log.js';
import { createTestDatabase, describeEachMode, first } from '../helpers/db.js';
import { TcpProxy } from '../helpers/proxy.js';
import { daysAgo } from '../helpers/time.js';

/**
 * A refresher pass that never returns (in the outage test, a pass in flight when
 * PostgreSQL crashed: no refresher session was left, no pass ran again, /health said
 * "ok" and a back-dated write's mark stayed). Here the pass's refresh call is swallowed
 * on its way to the server (a proxy drops it), so the pass waits for an answer that
 * cannot come while its session sits idle, holding the refresh lock. After `stallMs`
 * the refresher sees no refresher statement running: it reports the pass failed, ends
 * that session (and its lock), and its next pass, on a new connection, clears the mark.
 */
/** A first pass moves `through`; a write below it is then marked stale (one mark). */
async function markOneStaleHour(sql: Sql): Promise<void> {
  expect((await refreshAggregates(sql, silentLogger)).ran).toBe(true);
  await sql`insert into events (time, kind, user_id) values (${new Date(daysAgo(3))}, 'collect', 'late')`;
  expect((await readMarks(sql)).length).toBe(1);
}

/** A refresher every 50 ms whose sessions go through `proxy`, reporting its passes to `passes`. */
function refresherVia(proxy: TcpProxy, url: string, passes: RefreshPass[], stallMs: number): AggregateRefresher {
  return new AggregateRefresher(
    () => createSql(proxy.via(url), { max: 1, applicationName: 'headcount-refresher' }),
    50,
    silentLogger,
    (pass) => passes.push(pass),
    stallMs,
  );
}

describeEachMode(
  'a refresher pass that never returns',
  (mode) => {
    it('is abandoned once nothing runs for it, and the next pass clears the marks', { timeout: 60_000 }, async () => {
      const db = await createTestDatabase(mode);
      let dropping = false;
      let dropped = 0;
      let stuckConnection: number | undefined;
      const proxy = await TcpProxy.start(Number(new URL(db.url).port), (chunk, connection) => {
        if (dropping && chunk.includes('refresh_continuous_aggregate')) {
          dropping = false;
          dropped++;
          stuckConnection = connection;
          return 'drop';
        }
        // The stuck session's connection is lost just before the refresher ends that session
        // (as when the session dies first): its pass fails at once and its unlock waits for a
        // reconnect; the refresher must not leave a new session behind for it.
        if (stuckConnection !== undefined && chunk.includes('pg_terminate_backend')) proxy.reset(stuckConnection);
        return 'pass';
      });
      const direct = createSql(db.url, { max: 1 });
      const setup = createSql(db.url, { max: 1 });
      const passes: RefreshPass[] = [];
      let refresher: AggregateRefresher | undefined;
      try {
        await markOneStaleHour(setup);
        dropping = true;
        refresher = refresherVia(proxy, db.url, passes, 1000);
        refresher.start();
        let marks = 1;
        for (let i = 0; i < 200 && (marks > 0 || !refresher.health.status().ok); i++) {
          await new Promise((r) => setTimeout(r, 100));
          marks = (await readMarks(direct)).length;
        }
        expect(dropped).toBe(1);
        const said = passes.map((p) =>
          p.error === undefined ? 'ok' : p.error instanceof Error ? p.error.message : JSON.stringify(p.error),
        );
        expect(said.filter((s) => s.includes('abandoned')).length, JSON.stringify(said)).toBe(1);
        expect(marks).toBe(0);
        expect(refresher.health.status().ok).toBe(true);
        // The stuck session was ended with its lock: once the refresher has stopped, nobody
        // holds the refresh lock, and the refresher's current connection is its only session.
        await refresher.stop();
        const left = async () =>
          first(
            await direct`
            select count(*)::int as sessions,
                   count(*) filter (where exists (
                     select from pg_locks l
                     where l.pid = a.pid and l.locktype = 'advisory' and l.classid = 0 and l.objid = ${REFRESH_LOCK_KEY}
                   ))::int as holders
            from pg_stat_activity a
            where a.datname = current_database() and a.application_name = 'headcount-refresher'
          `,
          );
        let now = await left();
        for (let i = 0; i < 50 && now.sessions > 1; i++) {
          await new Promise((r) => setTimeout(r, 100));
          now = await left();
        }
        // On failure, who they are (CI runs found 2 here: the second one idle, never used,
        // opened for the stuck pass's unlock after its client was ended; now made certain by
        // the reset above).
        const who = await direct`
          select pid, state, backend_start, state_change, left(query, 80) as query
          from pg_stat_activity
          where datname = current_database() and application_name = 'headcount-refresher'
        `;
        expect(now, `${JSON.stringify(who)}; passes: ${JSON.stringify(said)}`).toEqual({ sessions: 1, holders: 0 });
      } finally {
        await refresher?.stop();
        await refresher?.end().catch(() => undefined);
        await proxy.close();
        await direct.end();
        await setup.end();
        await db.drop();
      }
    });

    /**
     * A refresher session of another instance that took the refresh lock and then sat idle
     * (its process stopped, its connection left open) keeps every pass out without any pass
     * of ours stalling: each finds the lock taken and returns. Once passes have not taken
     * the lock for `stallMs`, the refresher looks, ends that session, and the mark is cleared.
     */
    it('ends an idle session of another instance that holds the refresh lock', { timeout: 60_000 }, async () => {
      const db = await createTestDatabase(mode);
      const direct = createSql(db.url, { max: 1 });
      const other = createSql(db.url, { max: 1, applicationName: 'headcount-refresher' });
      const passes: RefreshPass[] = [];
      let refresher: AggregateRefresher | undefined;
      try {
        await markOneStaleHour(direct);
        const [held] = await other<{ pid: number }[]>`select pg_backend_pid() as pid, pg_advisory_lock(${REFRESH_LOCK_KEY})`;
        refresher = new AggregateRefresher(
          () => createSql(db.url, { max: 1, applicationName: 'headcount-refresher' }),
          50,
          silentLogger,
          (pass) => passes.push(pass),
          1000,
        );
        refresher.start();
        let marks = 1;
        for (let i = 0; i < 200 && marks > 0; i++) {
          await new Promise((r) => setTimeout(r, 100));
          marks = (await readMarks(direct)).length;
        }
        expect(marks).toBe(0);
        expect(passes.some((p) => p.result?.ran === false)).toBe(true);
        expect(passes.filter((p) => p.error !== undefined)).toEqual([]);
        expect(await direct`select from pg_stat_activity where pid = ${held?.pid ?? 0}`).toHaveLength(0);
      } finally {
        await refresher?.stop();
        await refresher?.end().catch(() => undefined);
        await other.end({ timeout: 0 }).catch(() => undefined);
        await direct.end();
        await db.drop();
      }
    });

    /**
     * The other side: a pass slower than `stallMs` whose session is idle for a moment
     * between its statements (here every statement reaches the server 300 ms late, so the
     * session is idle most of the time and a pass takes several seconds) is progressing,
     * and is left to finish.
     */
    it('is left alone while it is slow but its statements keep coming', { timeout: 60_000 }, async () => {
      const db = await createTestDatabase(mode);
      // A statement (extended protocol: Parse or Bind first; simple: Query), not the
      // start-up or authentication messages of a new connection.
      const statement = (chunk: Buffer) => [0x50, 0x42, 0x51].includes(chunk[0] ?? 0);
      const proxy = await TcpProxy.start(Number(new URL(db.url).port), (chunk) => (statement(chunk) ? { delayMs: 300 } : 'pass'));
      const direct = createSql(db.url, { max: 1 });
      const passes: RefreshPass[] = [];
      let refresher: AggregateRefresher | undefined;
      try {
        await markOneStaleHour(direct);
        refresher = refresherVia(proxy, db.url, passes, 2000);
        refresher.start();
        // Until a pass has cleared the mark (it refreshes, so it is one of the slow ones).
        for (let i = 0; i < 400 && passes.every((p) => p.error !== undefined || p.durationMs < 2000); i++) {
          await new Promise((r) => setTimeout(r, 100));
        }
        const said = passes.map((p) => ({
          ms: Math.round(p.durationMs),
          error: p.error instanceof Error ? p.error.message : p.error,
        }));
        expect(
          passes.some((p) => p.error === undefined && p.durationMs > 2000),
          JSON.stringify(said),
        ).toBe(true);
        expect(
          passes.filter((p) => p.error !== undefined),
          JSON.stringify(said),
        ).toEqual([]);
        expect((await readMarks(direct)).length).toBe(0);
      } finally {
        await refresher?.stop(20_000);
        await refresher?.end().catch(() => undefined);
        await proxy.close();
        await direct.end();
        await db.drop();
      }
    });
  },
  ['timescaledb'],
);
