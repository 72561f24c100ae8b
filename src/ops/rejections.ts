import type { Logger } from '../log.js';
import type { Metrics, RejectionReason } from './metrics.js';

/** The 503 codes of src/ingest and src/http, as metric reasons. */
const REASON_BY_CODE: Record<string, RejectionReason> = {
  ingest_queue_full: 'queue_full',
  database_unavailable: 'database_unavailable',
  shutting_down: 'shutting_down',
};

/**
 * Refused requests: every one counted in the metrics; the 503s (overload, a database
 * outage) summarised in the log at most once per `intervalMs`, so a flood of refusals
 * cannot become a flood of log lines. A 4xx is the client's business: counted only.
 */
export class Rejections {
  private pending = new Map<RejectionReason, number>();
  private lastError: unknown;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly intervalMs = 1000,
  ) {}

  invalid(): void {
    this.metrics.reject('invalid');
  }

  /** A 503 with this error code; `err` is what caused it, when it is more than the 503 itself. */
  unavailable(code: string, err?: unknown): void {
    const reason = REASON_BY_CODE[code] ?? 'unavailable';
    this.metrics.reject(reason);
    this.pending.set(reason, (this.pending.get(reason) ?? 0) + 1);
    if (err !== undefined) this.lastError = err;
    if (this.timer) return;
    this.timer = setTimeout(() => this.report(), this.intervalMs);
    this.timer.unref();
  }

  private report(): void {
    const refused = Object.fromEntries(this.pending);
    const err = this.lastError;
    this.pending = new Map();
    this.lastError = undefined;
    this.timer = undefined;
    this.log.warn(
      { refused, intervalMs: this.intervalMs, ...(err !== undefined ? { err } : {}) },
      'requests refused with 503 (counts since the last such line)',
    );
  }
}
