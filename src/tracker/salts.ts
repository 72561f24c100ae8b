import { randomBytes } from 'node:crypto';
import type { Sql } from '../db/client.js';
import { withDeadline } from '../db/deadline.js';
import { DAY_MS, floorDay, isoDay } from '../time.js';

/**
 * The daily salts of visitor ids, in headcount_salts: one random 32-byte value per UTC
 * day, shared by every instance. An event's salt is the one of the UTC day it is
 * received (not the day of its `time`), so no salt is needed for days gone: at the first
 * use of a day the previous days' salts but one are deleted (the previous day's is kept
 * until the next day ends, as the issue asks; nothing reads it), so an id cannot be
 * recomputed, nor two days' ids joined, after that.
 *
 * Race-free across instances: each inserts a fresh salt for the day with `on conflict do
 * nothing`, then reads the one that won. The current day's salt is cached in memory until
 * UTC midnight.
 */
export class DailySalts {
  private cached: { day: number; salt: Buffer } | undefined;
  private pending: { day: number; salt: Promise<Buffer> } | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly now: () => number = Date.now,
  ) {}

  /** The salt of the UTC day of `nowMs` (default: now). */
  current(nowMs = this.now()): Promise<Buffer> {
    const day = floorDay(nowMs);
    if (this.cached?.day === day) return Promise.resolve(this.cached.salt);
    if (this.pending?.day === day) return this.pending.salt;
    // A database that does not answer: 503 after the request deadline, as for the insert.
    const salt = withDeadline(this.fetch(day)).then(
      (value) => {
        if (!this.cached || this.cached.day < day) this.cached = { day, salt: value };
        return value;
      },
      (err: unknown) => {
        this.pending = undefined;
        throw err;
      },
    );
    this.pending = { day, salt };
    return salt;
  }

  private async fetch(day: number): Promise<Buffer> {
    const date = isoDay(day);
    const [row]: [{ salt: Buffer }?] = await this.sql`
      -- tracker: the day's salt (src/tracker/salts.ts)
      with made as (
        insert into headcount_salts (day, salt)
        values (${date}::date, ${randomBytes(32)})
        on conflict (day) do nothing
        returning salt
      )
      select salt from made
      union all
      select salt from headcount_salts where day = ${date}::date
      limit 1
    `;
    // Another instance's insert that committed after this statement's snapshot: read it.
    const [salt]: [{ salt: Buffer }?] = row
      ? [row]
      : await this.sql`
          -- tracker: the day's salt, made by another instance (src/tracker/salts.ts)
          select salt from headcount_salts where day = ${date}::date
        `;
    if (!salt) throw new Error(`no salt for ${date}`);
    await this.sql`
      -- tracker: salts of days before yesterday (src/tracker/salts.ts)
      delete from headcount_salts where day < ${isoDay(day - DAY_MS)}::date
    `;
    return salt.salt;
  }
}
