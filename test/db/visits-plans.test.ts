import { expect, inject, it } from 'vitest';
import { createSql } from '../../src/db/client.js';
import { createTestDatabase, describeEachMode, first } from '../helpers/db.js';
import { daysAgo } from '../helpers/time.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** How each node of `plan` reads `relation`: "Index Scan headcount_visits_user_idx", "Tid Scan", … */
const scansOf = (plan: PlanNode, relation: string): string[] => [
  ...(plan['Relation Name'] === relation ? [[plan['Node Type'], plan['Index Name']].filter(Boolean).join(' ')] : []),
  ...(plan.Plans ?? []).flatMap((p) => scansOf(p, relation)),
];

/**
 * headcount_track_visits' statement as one session plans it over time, the way each of
 * the service's pooled connections runs the insert trigger: the table emptied, a batch of
 * new visitors, then a batch of the same visitors a day later, round after round. Every
 * batch must find the stored visits by visitor (headcount_visits_user_idx) and delete
 * them by tid. Left to PostgreSQL's choice, the session's fourth round ran a generic plan
 * made while the table was empty (after its truncation): visits looked up by
 * headcount_visits_started_idx (every visit of the site, once per span) and deleted after
 * a sequential scan. 4,000 events of visitors with 8,000 stored visits took 5.5-8.6 s there
 * instead of 0.15-0.26 s, and the accuracy test's 20,000 (40,000 stored) over two minutes
 * (sql/common/headcount_track_visits.sql).
 */
/** The plans auto_explain logged (JSON) of the visits statement, from the session's notices. */
const visitsPlans = (logged: string[]): PlanNode[] =>
  logged
    .map((message) => JSON.parse(message.slice(message.indexOf('{'))) as { 'Query Text': string; Plan: PlanNode })
    .filter((explained) => explained['Query Text'].includes('delete from headcount_visits v'))
    .map((explained) => explained.Plan);

/** What a plan of the visits statement may do with headcount_visits: find by visitor, delete by tid. */
const expectVisitorLookups = (plans: PlanNode[], round: string) => {
  expect(plans, round).toHaveLength(1);
  const scans = scansOf(plans[0]!, 'headcount_visits');
  expect(scans.filter((s) => s.startsWith('Index Scan')).length, `${round}: ${scans.join(', ')}`).toBeGreaterThan(0);
  expect(
    scans.filter((s) => !['ModifyTable', 'Index Scan headcount_visits_user_idx', 'Tid Scan'].includes(s)),
    `${round}: ${scans.join(', ')}`,
  ).toEqual([]);
};

describeEachMode('the visits statement plans', (mode) => {
  it('looks stored visits up by visitor in every batch, whatever the session planned while the table was empty', async () => {
    const db = await createTestDatabase(mode);
    // auto_explain takes a superuser: the database's owner, as the operator would.
    const url = new URL(inject('databaseServer').adminUrl);
    url.pathname = new URL(db.url).pathname;
    const logged: string[] = [];
    const session = createSql(url.toString(), { max: 1, onNotice: (n) => logged.push(String(n.message)) });
    const users = 2000;
    const seed = (dayMs: number, repeat: number) => session`
      insert into events (time, kind, user_id)
      select ${new Date(dayMs)}::timestamptz + (i % 86400) * interval '1 second', 'collect', 'u' || (i % ${users})
      from generate_series(0, ${users * repeat - 1}) as i
    `;
    try {
      await session`load 'auto_explain'`;
      await session`set auto_explain.log_min_duration = 0`;
      await session`set auto_explain.log_nested_statements = on`;
      await session`set auto_explain.log_format = json`;
      await session`set client_min_messages = log`;
      for (let round = 0; round < 6; round++) {
        await db.reset();
        await seed(daysAgo(3), 2); // two visits each: their events are 2,000 s apart, over the 30-minute gap
        logged.length = 0;
        await seed(daysAgo(2), 1);
        expectVisitorLookups(visitsPlans(logged), `round ${round}`);
        // And the visits are right: each visitor's two of the first day and one of the second.
        expect(first(await session`select count(*)::int as n from headcount_visits`).n).toBe(3 * users);
      }
    } finally {
      await session.end();
      await db.drop();
    }
  });
  /**
   * Statistics that say the table is empty while it holds thousands of visits: an ANALYZE
   * (autovacuum's, or headcount_analyze_new's) that ran while a batch was still
   * uncommitted counts none of its rows (another transaction's, in progress) and records
   * the pages they fill with no rows in them, and the planner then takes the table for
   * empty until the next analyze. A CI run's accuracy test hung there for two minutes: a
   * batch of 20,000 events planned its lookups with headcount_visits_started_idx
   * (bitmap, site only: every visit of the site for each visitor), 10,000 took 78 s
   * instead of 0.7 s. The statement is planned with sequential and bitmap scans of the
   * table off, which leaves no plan that reads a site's visits per visitor.
   */
  it('looks stored visits up by visitor after statistics were taken while a batch was uncommitted', { timeout: 90_000 }, async () => {
    const db = await createTestDatabase(mode);
    const url = new URL(inject('databaseServer').adminUrl);
    url.pathname = new URL(db.url).pathname;
    const logged: string[] = [];
    const session = createSql(url.toString(), { max: 1, onNotice: (n) => logged.push(String(n.message)) });
    const other = createSql(db.url, { max: 1 });
    const users = 10_000;
    try {
      // A hang guard only: without the settings this batch ran over a minute.
      await session`set statement_timeout = '60s'`;
      await session.begin(async (tx) => {
        await tx`
          insert into events (time, kind, user_id)
          select ${new Date(daysAgo(3))}::timestamptz + (i % 86400) * interval '1 second', 'collect', 'u' || (i % ${users})
          from generate_series(0, ${2 * users - 1}) as i
        `;
        await other`analyze headcount_visits`;
      });
      const [stats] = await other<{ pages: number; rows: number; stored: number }[]>`
        select c.relpages as pages, c.reltuples::float8 as rows, (select count(*)::int from headcount_visits) as stored
        from pg_class c where c.oid = 'headcount_visits'::regclass
      `;
      // What this case is about: no rows recorded in pages full of them.
      expect(stats).toMatchObject({ rows: 0, stored: 2 * users });
      expect(stats!.pages).toBeGreaterThan(0);

      await session`load 'auto_explain'`;
      await session`set auto_explain.log_min_duration = 0`;
      await session`set auto_explain.log_nested_statements = on`;
      await session`set auto_explain.log_format = json`;
      await session`set client_min_messages = log`;
      logged.length = 0;
      await session`
        insert into events (time, kind, user_id)
        select ${new Date(daysAgo(2))}::timestamptz + (i % 86400) * interval '1 second', 'collect', 'u' || (i % ${users})
        from generate_series(0, ${users - 1}) as i
      `;
      expectVisitorLookups(visitsPlans(logged), 'the batch after the analyze');
      expect(first(await session`select count(*)::int as n from headcount_visits`).n).toBe(3 * users);
    } finally {
      await session.end();
      await other.end();
      await db.drop();
    }
  });
});
