import { deadlineOf, type Sql } from '../../db/client.js';
import { withDeadline } from '../../db/deadline.js';

/** A token bucket: `ratePerSecond` tokens come back each second, up to `burst`. */
export interface Bucket {
  ratePerSecond: number;
  burst: number;
}

export interface Taken {
  allowed: boolean;
  /** Whole tokens left after this request (in the shared bucket and this instance's lease). */
  remaining: number;
  /** Seconds until one token is there again (when refused). */
  retryAfterSeconds: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
}

/** How long an instance may keep tokens it took: after that they go back with its next lease. */
const LEASE_TTL_MS = 1000;

/**
 * How many tokens an instance takes at once: a tenth of a second of the rate, at most a
 * tenth of the burst, at least one. With small limits every request asks the database
 * (exact); with large ones a busy key costs a statement per lease, and what other
 * instances may see taken but unspent is bounded by one lease each.
 */
export const leaseSize = (b: Bucket): number => Math.max(1, Math.min(Math.floor(b.burst / 10), Math.ceil(b.ratePerSecond / 10)));

interface Lease {
  /** Tokens this instance took and has not spent. */
  tokens: number;
  expiresAt: number;
  /** What the shared bucket held after the last lease. */
  shared: number;
  /** The shared bucket was empty: refuse without asking until then. */
  emptyUntil: number;
  pending?: Promise<void>;
}

/**
 * Per-key token buckets shared by every instance through the database (one unlogged row
 * per key and use), taken in leases: see leaseSize. One RateLimiter per app.
 */
export class RateLimiter {
  private readonly leases = new Map<string, Lease>();

  constructor(private readonly sql: Sql) {}

  /**
   * Takes one token of `keyId`'s bucket for `use` (ingest or read): at once while this
   * instance holds a lease, else after taking one.
   */
  take(keyId: string, use: string, bucket: Bucket): Taken | Promise<Taken> {
    const id = `${keyId}/${use}`;
    let lease = this.leases.get(id);
    if (!lease) {
      lease = { tokens: 0, expiresAt: 0, shared: bucket.burst, emptyUntil: 0 };
      this.leases.set(id, lease);
    }
    return this.fromLease(lease, bucket) ?? this.renewAndTake(id, lease, bucket);
  }

  /** A token of the lease, a refusal while the shared bucket is known to be empty, or undefined. */
  private fromLease(lease: Lease, bucket: Bucket): Taken | undefined {
    const now = Date.now();
    if (lease.tokens > 0 && lease.expiresAt > now) {
      lease.tokens--;
      return this.answer(bucket, true, lease.shared + lease.tokens);
    }
    if (lease.emptyUntil > now) {
      const taken = this.answer(bucket, false, 0);
      taken.retryAfterSeconds = Math.max(1, Math.ceil((lease.emptyUntil - now) / 1000));
      return taken;
    }
    return undefined;
  }

  private async renewAndTake(id: string, lease: Lease, bucket: Bucket): Promise<Taken> {
    for (;;) {
      // One lease at a time per key: concurrent requests wait for it and share it.
      lease.pending ??= this.renew(id, lease, bucket).finally(() => {
        lease.pending = undefined;
      });
      await lease.pending;
      const taken = this.fromLease(lease, bucket);
      if (taken) return taken;
    }
  }

  private answer(bucket: Bucket, allowed: boolean, tokens: number): Taken {
    return {
      allowed,
      remaining: Math.max(0, Math.floor(tokens)),
      retryAfterSeconds: 0,
      resetSeconds: Math.max(0, Math.ceil((bucket.burst - tokens) / bucket.ratePerSecond)),
    };
  }

  /**
   * One statement: gives back what an expired lease left unspent, refills the bucket for
   * the time since it was last touched (the database's clock, the same for every
   * instance) and takes up to a lease of whole tokens.
   */
  private async renew(id: string, lease: Lease, bucket: Bucket): Promise<void> {
    const returned = lease.tokens;
    lease.tokens = 0;
    const want = leaseSize(bucket);
    // The refill reads the row the upsert has locked (r.*), not a snapshot: concurrent
    // leases of one key take turns on the row and never hand out the same token twice.
    const available = this
      .sql`least(${bucket.burst}::float8, r.tokens + ${returned}::float8 + extract(epoch from clock_timestamp() - r.updated_at) * ${bucket.ratePerSecond}::float8)`;
    const granted = this.sql`least(${want}::float8, floor(${available}))`;
    let row: { tokens: number; granted: number } | undefined;
    try {
      [row] = await withDeadline(
        this.sql`
        insert into headcount_rate_limits as r (key_id, tokens, updated_at, allowed, granted) /* v1/auth/lease */
        values (${id}, ${bucket.burst}::float8 - least(${want}::int, ${bucket.burst}::int), clock_timestamp(), true, least(${want}::int, ${bucket.burst}::int))
        on conflict (key_id) do update set
          tokens = ${available} - ${granted},
          granted = ${granted},
          allowed = ${granted} >= 1,
          updated_at = clock_timestamp()
        returning tokens, granted
      `,
        deadlineOf(this.sql),
      );
    } catch (err) {
      lease.tokens = returned; // not given back: still ours to spend or return
      throw err;
    }
    const now = Date.now();
    lease.tokens = row?.granted ?? 0;
    lease.shared = row?.tokens ?? 0;
    lease.expiresAt = now + LEASE_TTL_MS;
    lease.emptyUntil = lease.tokens > 0 ? 0 : now + Math.ceil(((1 - lease.shared) / bucket.ratePerSecond) * 1000);
  }
}
