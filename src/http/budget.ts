import { UnavailableError } from './errors.js';

/**
 * Bytes of request bodies being read and parsed at once, across all requests: a parsed
 * JSON body takes several times its size in memory, so concurrency alone does not bound
 * memory. A request that does not fit waits its turn (its bytes stay in the socket), up
 * to `maxWaitMs`, then gets 503.
 */
export class ByteBudget {
  private inUse = 0;
  private waiting: { bytes: number; grant: () => void }[] = [];

  constructor(
    readonly capacity: number,
    private readonly maxWaitMs: number,
    private readonly retryAfterSeconds: number,
  ) {}

  /** Resolves with a release function once `bytes` fit. */
  async acquire(bytes: number): Promise<() => void> {
    const want = Math.min(bytes, this.capacity);
    if (this.waiting.length > 0 || this.inUse + want > this.capacity) {
      await new Promise<void>((resolve, reject) => {
        const entry = { bytes: want, grant: () => (clearTimeout(timer), resolve()) };
        const timer = setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
          reject(new UnavailableError('server_busy', 'too many large requests at once; retry later', this.retryAfterSeconds));
        }, this.maxWaitMs);
        this.waiting.push(entry);
      });
    } else this.inUse += want;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse -= want;
      this.grantWaiting();
    };
  }

  private grantWaiting(): void {
    while (this.waiting.length > 0 && this.inUse + this.waiting[0]!.bytes <= this.capacity) {
      const next = this.waiting.shift()!;
      this.inUse += next.bytes;
      next.grant();
    }
  }
}
