import { UnavailableError } from './errors.js';

/**
 * Memory that request bodies being read, parsed and written hold at once, across all
 * requests: a parsed body takes several times its size, so concurrency alone does not
 * bound memory. Each request holds a `Reservation` that grows only as its body arrives
 * (and, once parsed, with what it became), so a client that declares a megabyte and
 * sends a byte a second holds a byte's worth, not a megabyte's. One request's share is
 * capped at `maxShare`.
 *
 * A request that does not fit waits its turn, its bytes left in the socket, up to
 * `maxWaitMs` in all, then gets 503. Waiters are served oldest request first. When
 * partly received bodies fill the budget, none of them could finish and release it: so
 * the oldest waiting request may go beyond the capacity, one request at a time, until it
 * is released, by at most one share (or, with no cap, its body's size limit). Whatever
 * the timing, the bodies in flight hold at most that much: a function of settings.
 */
export class ByteBudget {
  private inUse = 0;
  /** Open reservations and the bytes each holds, oldest first (a Map iterates in insertion order). */
  private readonly open = new Map<Reservation, number>();
  private readonly waiting: Waiter[] = [];
  /** The one request that may go beyond the capacity, until it is released. */
  private overdraft: Reservation | null = null;

  constructor(
    readonly capacity: number,
    /** How long one request may wait for the budget in all (then 503). */
    readonly maxWaitMs: number,
    private readonly retryAfterSeconds: number,
    readonly maxShare = Math.floor(capacity / 2),
  ) {}

  /** A share of the budget for one request, holding nothing yet; `release()` it when the response ends. */
  reserve(): Reservation {
    const reservation = new Reservation(this);
    this.open.set(reservation, 0);
    return reservation;
  }

  /** Bytes held by every request at once (metrics, tests). */
  get held(): number {
    return this.inUse;
  }

  /** Bytes `r` holds (0 once released). */
  heldBy(r: Reservation): number {
    return this.open.get(r) ?? 0;
  }

  /** @internal Reservation.growTo: `bytes` more for `r`, once they fit, waiting at most `waitMs`. */
  async take(r: Reservation, bytes: number, waitMs: number): Promise<void> {
    if (!this.open.has(r)) return;
    if (this.overdraft === r || (this.waiting.length === 0 && this.inUse + bytes <= this.capacity)) {
      this.credit(r, bytes);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        reservation: r,
        bytes,
        grant: () => (clearTimeout(timer), resolve()),
        fail: (err) => (clearTimeout(timer), reject(err)),
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(waiter), 1);
        reject(new UnavailableError('server_busy', 'too many large requests at once; retry later', this.retryAfterSeconds));
        this.grantWaiting();
      }, waitMs);
      // Oldest request first: a reservation opened earlier goes before younger ones.
      const ages = [...this.open.keys()];
      const at = this.waiting.findIndex((w) => ages.indexOf(w.reservation) > ages.indexOf(r));
      this.waiting.splice(at === -1 ? this.waiting.length : at, 0, waiter);
      this.grantWaiting();
    });
  }

  /** @internal Reservation.release */
  give(r: Reservation): void {
    this.inUse -= this.heldBy(r);
    this.open.delete(r);
    if (this.overdraft === r) this.overdraft = null;
    for (const w of this.waiting.filter((w) => w.reservation === r)) {
      this.waiting.splice(this.waiting.indexOf(w), 1);
      w.fail(new Error('released while waiting'));
    }
    this.grantWaiting();
  }

  private credit(r: Reservation, bytes: number): void {
    this.inUse += bytes;
    this.open.set(r, this.heldBy(r) + bytes);
  }


  private grantWaiting(): void {
    for (;;) {
      const next = this.waiting[0];
      if (!next) return;
      if (this.inUse + next.bytes > this.capacity) {
        if (this.overdraft !== null && this.overdraft !== next.reservation) return;
        this.overdraft = next.reservation;
      }
      this.waiting.shift();
      this.credit(next.reservation, next.bytes);
      next.grant();
    }
  }
}

interface Waiter {
  reservation: Reservation;
  bytes: number;
  grant: () => void;
  fail: (err: Error) => void;
}

/** One request's share of a ByteBudget: it only grows, up to the budget's maxShare, until released. */
export class Reservation {
  private waitedMs = 0;

  constructor(private readonly budget: ByteBudget) {}

  /** Bytes this request holds. */
  get bytes(): number {
    return this.budget.heldBy(this);
  }

  /** Resolves once this request holds min(`bytes`, maxShare); rejects with 503 once it has waited maxWaitMs in all. */
  async growTo(bytes: number): Promise<void> {
    const more = Math.min(bytes, this.budget.maxShare) - this.bytes;
    if (more <= 0) return;
    const started = performance.now();
    try {
      await this.budget.take(this, more, Math.max(0, this.budget.maxWaitMs - this.waitedMs));
    } finally {
      this.waitedMs += performance.now() - started;
    }
  }

  /** Gives back everything this request holds; a wait in progress rejects. */
  release(): void {
    this.budget.give(this);
  }
}
