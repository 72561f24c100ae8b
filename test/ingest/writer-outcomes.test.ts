import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DatabaseUnavailable } from '../../src/db/errors.js';
import { EventsRejected } from '../../src/ingest/errors.js';
import { type EventRow, GroupCommitWriter, storedRows } from '../../src/ingest/writer.js';
import { silentLogger } from '../../src/log.js';
import { createTestDatabase, type TestDatabase } from '../helpers/db.js';

const options = {
  maxBatchRows: 5000,
  maxQueueRows: 100_000,
  maxQueueBytes: 64 * 1024 * 1024,
  flushDelayMs: 0,
  maxInflightFlushes: 1,
  parallelFlushMinRows: 256,
  deadlineMs: 1500,
};
const row = (userId: string, id?: string): EventRow => ({
  site: 'default',
  timeMs: Date.now(),
  kind: 'collect',
  userId,
  page: '',
  weight: 1,
  ...(id ? { id } : {}),
});

// What a failed or odd flush answers does not depend on the storage mode.
describe('what the writer answers for a batch', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('postgres');
  });
  afterAll(async () => db?.drop());

  it('answers EventsRejected (422) only when the database refused the rows themselves; any other failure is DatabaseUnavailable', async () => {
    // A failure that says nothing about the rows (SQLSTATE P0001, raised by a trigger).
    await db.sql`
      create function refuse_all() returns trigger language plpgsql as $$
      begin raise exception 'not now'; end $$
    `;
    await db.sql`create trigger refuse_all before insert on events for each row execute function refuse_all()`;
    try {
      const writer = new GroupCommitWriter(db.sql, options, silentLogger);
      const results = await Promise.allSettled([writer.write([row('a')]), writer.write([row('b')])]);
      for (const r of results) expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DatabaseUnavailable);
    } finally {
      await db.sql`drop trigger refuse_all on events`;
    }
    // A refusal of the rows (SQLSTATE 23514: a weight the table's check refuses).
    const writer = new GroupCommitWriter(db.sql, options, silentLogger);
    await expect(writer.write([{ ...row('c'), weight: 0 }])).rejects.toBeInstanceOf(EventsRejected);
  });

  it('counts an insert that returned as stored, whatever its answer looks like', () => {
    const rows = [row('a', 'e1'), row('b', 'e2')];
    const ms = rows[0]!.timeMs;
    expect(storedRows(rows, [{ keys: [['default', 'e1', ms]] }]).claim(rows)).toBe(1);
    // An answer with holes, or none: the statement committed, so its rows are stored.
    expect(storedRows(rows, new Array<{ keys?: unknown }>(3)).claim(rows)).toBe(2);
    expect(storedRows(rows, []).claim(rows)).toBe(2);
  });
});
