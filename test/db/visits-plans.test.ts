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
        const plans = logged
          .map((message) => JSON.parse(message.slice(message.indexOf('{'))) as { 'Query Text': string; Plan: PlanNode })
          .filter((explained) => explained['Query Text'].includes('delete from headcount_visits v'));
        expect(plans, `round ${round}`).toHaveLength(1);
        const scans = scansOf(plans[0]!.Plan, 'headcount_visits');
        expect(scans.filter((s) => s.startsWith('Index Scan')).length, `round ${round}: ${scans.join(', ')}`).toBeGreaterThan(0);
        expect(
          scans.filter((s) => !['ModifyTable', 'Index Scan headcount_visits_user_idx', 'Tid Scan'].includes(s)),
          `round ${round}: ${scans.join(', ')}`,
        ).toEqual([]);
        // And the visits are right: each visitor's two of the first day and one of the second.
        expect(first(await session`select count(*)::int as n from headcount_visits`).n).toBe(3 * users);
      }
    } finally {
      await session.end();
      await db.drop();
    }
  });
});
