import { deadlineOf, type Sql } from '../../db/client.js';
import { withDeadline } from '../../db/deadline.js';

/** A token bucket: `ratePerSecond` tokens come back each second, up to `burst`. */
export interface Bucket {
  ratePerSecond: number;
  burst: number;
}

export interface Taken {
  allowed: boolean;
  /** Whole tokens left after this request. */
  remaining: number;
  /** Seconds until one token is there again (when refused). */
  retryAfterSeconds: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
}

/**
 * Takes one token from the key's bucket, in the database so that every instance shares
 * it: one statement, the refill computed from the time since the bucket was last
 * touched (the database's clock, the same for every instance).
 */
export async function takeToken(sql: Sql, keyId: string, bucket: Bucket): Promise<Taken> {
  // The refill reads the row the update has locked (r.*), not a snapshot: concurrent
  // requests of one key take turns on the row and never spend the same token twice.
  const refilled = sql`least(${bucket.burst}::float8, r.tokens + extract(epoch from clock_timestamp() - r.updated_at) * ${bucket.ratePerSecond}::float8)`;
  const [row]: [{ tokens: number; allowed: boolean }?] = await withDeadline(
    sql`
      insert into headcount_rate_limits as r (key_id, tokens, updated_at, allowed) /* v1/auth/takeToken */
      values (${keyId}, ${bucket.burst}::float8 - 1, clock_timestamp(), true)
      on conflict (key_id) do update set
        tokens = case when ${refilled} >= 1 then ${refilled} - 1 else ${refilled} end,
        allowed = ${refilled} >= 1,
        updated_at = clock_timestamp()
      returning tokens, allowed
    `,
    deadlineOf(sql),
  );
  const tokens = row?.tokens ?? 0;
  const allowed = row?.allowed ?? true;
  return {
    allowed,
    remaining: Math.max(0, Math.floor(tokens)),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil((1 - tokens) / bucket.ratePerSecond)),
    resetSeconds: Math.max(0, Math.ceil((bucket.burst - tokens) / bucket.ratePerSecond)),
  };
}
