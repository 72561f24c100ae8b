import { LRUCache } from 'lru-cache';
import type { Bucket } from './rate-limit.js';

interface Tokens {
  tokens: number;
  atMs: number;
}

/** What `reserve` answers: go ahead (and `refund` if the key turns out valid), or wait. */
export type Reservation = { allowed: true } | { allowed: false; retryAfterSeconds: number };

/**
 * Per client address, a token bucket of key lookups that may fail (AUTH_FAILURES_*): a
 * request with a key this instance has not looked up lately takes a token before the
 * lookup, and gets it back when the key is valid. So valid keys never spend it, a client
 * sending unknown keys costs the database at most `burst` lookups and then `ratePerSecond`
 * a second, and concurrent requests cannot all start lookups before the first fails.
 * In this process's memory only (per instance, per worker): it bounds what one instance
 * asks of the database. The address is the socket's peer: behind a reverse proxy every
 * client shares the proxy's.
 */
export class AuthFailureLimit {
  private readonly buckets: LRUCache<string, Tokens>;

  constructor(private readonly bucket: Bucket) {
    // An address left alone long enough to refill is as good as a new one: forget it then.
    // Beyond `max` addresses the least recent go first, which only forgives them early.
    this.buckets = new LRUCache({ max: 100_000, ttl: Math.ceil((bucket.burst / bucket.ratePerSecond) * 1000) });
  }

  reserve(address: string, nowMs = Date.now()): Reservation {
    const b = this.refilled(address, nowMs);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      this.buckets.set(address, b);
      return { allowed: true };
    }
    return { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - b.tokens) / this.bucket.ratePerSecond)) };
  }

  /** The lookup found a valid key: its token goes back. */
  refund(address: string, nowMs = Date.now()): void {
    const b = this.refilled(address, nowMs);
    b.tokens = Math.min(this.bucket.burst, b.tokens + 1);
    this.buckets.set(address, b);
  }

  private refilled(address: string, nowMs: number): Tokens {
    const b = this.buckets.get(address) ?? { tokens: this.bucket.burst, atMs: nowMs };
    b.tokens = Math.min(this.bucket.burst, b.tokens + ((nowMs - b.atMs) / 1000) * this.bucket.ratePerSecond);
    b.atMs = nowMs;
    return b;
  }
}
