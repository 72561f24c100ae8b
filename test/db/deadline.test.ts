import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSql, type Sql } from '../../src/db/client.js';
import { readWithin, withDeadline } from '../../src/db/deadline.js';
import { DatabaseUnavailable } from '../../src/db/errors.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

// What a deadline does to a connection does not depend on the storage mode.
describe('a query cut at its deadline', () => {
  let db: TestDatabase;
  let sql: Sql;
  beforeAll(async () => {
    db = await createTestDatabase('postgres');
    // One connection: whatever a cut query leaves on it, the next query meets.
    sql = createSql(db.url, { max: 1 });
  });
  afterAll(async () => {
    await sql?.end();
    await db?.drop();
  });

  // porsager/postgres#1119 and #1181: postgres.js 3.4.9, after an error that ends a query
  // while its rows stream (a cancel request, a statement_timeout), answers the next query
  // on that connection with an array holding the previous query's row count of holes.
  it('leaves the connection answering the next query exactly, wherever the cut falls in the rows', async () => {
    for (const afterMs of [300, 700, 1100, 1500]) {
      const cut = readWithin(sql, afterMs, (tx) => tx`select i, repeat('x', 50) from generate_series(1, 3000000) i`);
      await expect(cut, `cut after ${afterMs} ms`).rejects.toBeInstanceOf(DatabaseUnavailable);
      const next = await sql`select 42 as x`;
      expect([...next], `the query after a cut at ${afterMs} ms`).toEqual([{ x: 42 }]);
    }
  }, 60_000);

  it('drops a query still waiting for a connection: it never runs', async () => {
    await sql`create table if not exists deadline_probe (n int)`;
    // The pool's only connection, taken (a busy one would take the insert in its pipeline).
    const reserved = await sql.reserve();
    const waiting = withDeadline(sql`insert into deadline_probe values (1)`, 100);
    await expect(waiting).rejects.toBeInstanceOf(DatabaseUnavailable);
    reserved.release();
    expect(await sql`select count(*)::int as n from deadline_probe`).toEqual([{ n: 0 }]);
  });
});
