import type Koa from 'koa';
import { HttpError, UnavailableError } from '../http/errors.js';
import type { Principal } from './auth/keys.js';

interface Waiter {
  key: string;
  resolve: (release: () => void) => void;
  timer: NodeJS.Timeout;
}

export interface SlotLimits {
  /** Running at once in this process. */
  maxConcurrent: number;
  /** Running at once per key (per client address when /v1 needs no key). */
  maxConcurrentPerKey: number;
}

/**
 * A bound on how many of one kind of read (stats queries, exports) run at once, in all
 * and per key: each holds a pooled connection while it runs, and the rate limit counts
 * requests, not how long they hold one. A request that finds no slot waits up to
 * `waitMs` for one (first come, first served), then is refused: 429 when its own key
 * holds its share, else 503; both with Retry-After.
 */
export class Slots {
  private running = 0;
  private readonly byKey = new Map<string, number>();
  private readonly waiting: Waiter[] = [];

  constructor(
    /** What runs, for the messages: "stats queries", "exports". */
    private readonly what: string,
    /** The 503's code. */
    private readonly busyCode: string,
    private readonly limits: SlotLimits,
    private readonly waitMs: number,
    private readonly retryAfterSeconds: number,
  ) {}

  /** Resolves with the function that gives the slot back (call it once), or throws the refusal. */
  async acquire(key: string): Promise<() => void> {
    if (this.fits(key)) return this.take(key);
    // At most as many waiting as may run: beyond that a wait would be longer than waitMs.
    if (this.waitMs > 0 && this.waiting.length < this.limits.maxConcurrent) {
      const release = await new Promise<(() => void) | null>((resolve) => {
        const waiter: Waiter = {
          key,
          resolve,
          timer: setTimeout(() => {
            this.waiting.splice(this.waiting.indexOf(waiter), 1);
            resolve(null);
          }, this.waitMs),
        };
        this.waiting.push(waiter);
      });
      if (release) return release;
    }
    throw this.refusal(key);
  }

  /** The slot of a request, given back when its response has been sent or abandoned. */
  async hold(ctx: Koa.Context): Promise<() => void> {
    return this.acquire(slotKey(ctx));
  }

  private fits(key: string): boolean {
    return this.running < this.limits.maxConcurrent && (this.byKey.get(key) ?? 0) < this.limits.maxConcurrentPerKey;
  }

  private take(key: string): () => void {
    this.running++;
    this.byKey.set(key, (this.byKey.get(key) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.running--;
      const left = this.byKey.get(key)! - 1;
      if (left === 0) this.byKey.delete(key);
      else this.byKey.set(key, left);
      this.handOver();
    };
  }

  /** Gives freed slots to the first waiters that fit. */
  private handOver(): void {
    for (let i = 0; i < this.waiting.length;) {
      const waiter = this.waiting[i]!;
      if (!this.fits(waiter.key)) {
        i++;
        continue;
      }
      this.waiting.splice(i, 1);
      clearTimeout(waiter.timer);
      waiter.resolve(this.take(waiter.key));
    }
  }

  private refusal(key: string): HttpError {
    if ((this.byKey.get(key) ?? 0) >= this.limits.maxConcurrentPerKey) {
      return new HttpError(
        429,
        'too_many_concurrent',
        `this key has ${this.limits.maxConcurrentPerKey} ${this.what} running already (the most one key may run at once); retry when one has finished`,
        undefined,
        { 'Retry-After': String(this.retryAfterSeconds) },
      );
    }
    return new UnavailableError(
      this.busyCode,
      `${this.limits.maxConcurrent} ${this.what} are running; retry later`,
      this.retryAfterSeconds,
    );
  }
}

/** Whose share a request takes: its key's, or (V1_AUTH=none) its client address's. */
const slotKey = (ctx: Koa.Context): string => {
  const principal = ctx.state.principal as Principal | undefined;
  return principal ? `key:${principal.keyId}` : `address:${ctx.ip}`;
};
