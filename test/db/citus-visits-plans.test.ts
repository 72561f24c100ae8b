import type { TransactionSql } from 'postgres';
import { expect, inject, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { createTestDatabase, describeEachMode, first } from '../helpers/db.js';
import { daysAgo } from '../helpers/time.js';

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

interface Explained {
  'Query Text': string;
  Plan: PlanNode;
}

/** How each node of `plan` reads a shard of headcount_visits: "Index Scan headcount_visits_user_idx_102041", "Tid Scan", … */
const visitScans = (plan: PlanNode): string[] => [
  ...(/^headcount_visits_\d+$/.test(plan['Relation Name'] ?? '')
    ? [[plan['Node Type'], plan['Index Name']].filter(Boolean).join(' ')]
    : []),
  ...(plan.Plans ?? []).flatMap(visitScans),
];

/** The workers' statements on shards of headcount_visits (auto_explain's notices, passed on by Citus), with how they read it. */
const shardStatements = (logged: string[]): { query: string; scans: string[] }[] =>
  logged
    .filter((message) => message.includes('"Query Text"'))
    .map((message) => JSON.parse(message.slice(message.indexOf('{'))) as Explained)
    .filter((explained) => /headcount_visits_\d+/.test(explained['Query Text']))
    .map((explained) => ({ query: explained['Query Text'].slice(0, 80), scans: visitScans(explained.Plan) }));

/** Only lookups by visitor through headcount_visits_user_idx and deletes by tid: never a shard's every visit. */
const expectLookups = (statements: { query: string; scans: string[] }[], batch: string) => {
  const scans = statements.flatMap((s) => s.scans);
  const described = JSON.stringify(statements);
  expect(
    scans.some((s) => /^Index (Only )?Scan headcount_visits_user_idx_\d+$/.test(s)),
    `${batch}: ${described}`,
  ).toBe(true);
  expect(
    scans.some((s) => s === 'Tid Scan'),
    `${batch}: ${described}`,
  ).toBe(true);
  expect(
    scans.filter((s) => !/^(ModifyTable|Tid Scan|Index (Only )?Scan headcount_visits_user_idx_\d+)$/.test(s)),
    `${batch}: ${described}`,
  ).toEqual([]);
};

/**
 * citus mode: the visits statements are planned by the workers, from the shards'
 * statistics. Statistics that say a shard of headcount_visits is empty while it holds
 * thousands of visits (an ANALYZE taken while a batch was uncommitted counts none of its
 * rows in the pages they fill) had a batch over many sites join every visit of a shard to
 * the batch's spans, once per span: 10,000 events over 5 sites against 40,000 visits took
 * 7-9 s instead of 0.6 s, and grew with the square of the visits. The statements now fix
 * their own join order (the spans drive index lookups; the units drive deletes by tid),
 * and the writer passes the planner settings that keep the workers to those paths on to
 * them (sql/citus/headcount_events_inserted.sql). auto_explain runs on the workers of the
 * test's database and its plans come back as notices.
 */
describeEachMode(
  'the visits statements on Citus workers',
  (mode) => {
    it(
      'look stored visits up by visitor and delete them by tid after statistics were taken while a batch was uncommitted',
      { timeout: 180_000 },
      async () => {
        const db = await createTestDatabase(mode);
        const name = new URL(db.url).pathname.slice(1);
        const adminUrl = new URL(inject('databaseServer').citus!.coordinator.adminUrl);
        adminUrl.pathname = `/${name}`;
        const admin = createSql(adminUrl.toString(), { max: 1 });
        const other = createSql(db.url, { max: 1 });
        let session: Sql | undefined;
        const users = 10_000;
        // Each visitor on one of 5 sites (a batch over 4 sites or more takes the set-based
        // statements), its events minutes apart: one visit each.
        const batch = (sql: Sql | TransactionSql, count: number, minute: number, sites = 5) => sql`
        select headcount_events_inserted(array(
          select row(${new Date(daysAgo(1))}::timestamptz + (${minute} + i % 7) * interval '1 minute', 'pageview',
                     'u' || (i % ${users}), '/', 1, 's' || ((i % ${users}) % ${sites}),
                     null, null, null, null, null, null, null, null, null, null, null, null, null)::events
          from generate_series(0, ${count - 1}) as i
          where (i % ${users}) % 5 < ${sites}
        ))
      `;
        try {
          // Ours to keep: no autoanalyze between the analyze below and the batch it is for.
          await admin`alter table headcount_visits set (autovacuum_enabled = false)`;
          // Citus passes these on to the workers' database; its later sessions load them.
          for (const [setting, value] of [
            ['session_preload_libraries', 'auto_explain'],
            ['auto_explain.log_min_duration', '0'],
            ['auto_explain.log_level', 'notice'],
            ['auto_explain.log_format', 'json'],
          ] as const) {
            await admin.unsafe(`alter database "${name}" set ${setting} = '${value}'`);
          }
          const logged: string[] = [];
          session = createSql(adminUrl.toString(), { max: 1, onNotice: (n) => logged.push(String(n.message)) });
          // A hang guard only: without the change the measured batch ran for seconds to minutes.
          await session`set statement_timeout = '90s'`;

          await session.begin(async (tx) => {
            await batch(tx, 2 * users, 0);
            await other`analyze headcount_visits`;
          });
          // What this case is about: shards with no rows recorded in pages full of them.
          const shards = await admin<{ result: string }[]>`
          select result from run_command_on_shards('headcount_visits',
            $$select reltuples::bigint || '/' || relpages from pg_class where oid = '%s'::regclass$$)
        `;
          const filled = shards.map((s) => s.result.split('/').map(Number)).filter(([, pages]) => pages! > 0);
          expect(filled.length, JSON.stringify(shards)).toBeGreaterThan(0);
          expect(
            filled.filter(([rows]) => rows !== 0),
            JSON.stringify(shards),
          ).toEqual([]);
          expect(first(await admin`select count(*)::int as n from headcount_visits`).n).toBe(users);

          // The same visitors, later in their visits: every stored visit is met, read and replaced.
          logged.length = 0;
          await session.begin((tx) => batch(tx, users, 10));
          expectLookups(shardStatements(logged), 'a batch over 5 sites');
          // One site's visitors: the statement of a single site, routed to its shard.
          logged.length = 0;
          await session.begin((tx) => batch(tx, users, 20, 1));
          expectLookups(shardStatements(logged), 'a batch of one site');

          const [visits] = await admin<{ visits: number; pageviews: number }[]>`
          select count(*)::int as visits, sum(pageviews)::int as pageviews from headcount_visits
        `;
          // Each visitor's one visit: 2 + 1 events, and 1 more for the site s0's visitors.
          expect(visits).toMatchObject({ visits: users, pageviews: 3 * users + users / 5 });
        } finally {
          await session?.end();
          await admin.end();
          await other.end();
          await db.drop();
        }
      },
    );
  },
  ['citus'],
);
