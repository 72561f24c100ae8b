import type { Logger } from '../log.js';

/** What /health (and operators) see of a background job. */
export interface JobStatus {
  job: string;
  ok: boolean;
  /** When it last succeeded (ISO 8601), if ever. */
  lastSuccess: string | null;
  /** Since when it has been failing (ISO 8601), while it is. */
  failingSince: string | null;
  lastError: string | null;
  /** Failed runs in a row (0 when the last one succeeded). */
  failuresInARow: number;
}

/** Logs a failing job's first failure, then at most once a minute while it keeps failing. */
const REPEAT_LOG_MS = 60_000;

/**
 * The health of one background job (the aggregate refresher, partition maintenance):
 * failures are logged with backoff, and the job is reported failing until it succeeds.
 */
export class JobHealth {
  private lastSuccessMs: number | null = null;
  private failingSinceMs: number | null = null;
  private lastError: string | null = null;
  private lastLoggedMs = 0;
  private failures = 0;

  constructor(
    private readonly job: string,
    private readonly log: Logger,
  ) {}

  succeeded(): void {
    if (this.failingSinceMs !== null) {
      this.log.info({ failures: this.failures, failingForMs: Date.now() - this.failingSinceMs }, `${this.job} recovered`);
    }
    this.lastSuccessMs = Date.now();
    this.failingSinceMs = null;
    this.lastError = null;
    this.failures = 0;
  }

  failed(err: unknown): void {
    const now = Date.now();
    this.failures++;
    this.failingSinceMs ??= now;
    this.lastError = err instanceof Error ? err.message : String(err);
    if (this.failures === 1 || now - this.lastLoggedMs >= REPEAT_LOG_MS) {
      this.lastLoggedMs = now;
      this.log.warn({ err, failures: this.failures }, `${this.job} failed; retrying`);
    }
  }

  status(): JobStatus {
    const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    return {
      job: this.job,
      ok: this.failingSinceMs === null,
      lastSuccess: iso(this.lastSuccessMs),
      failingSince: iso(this.failingSinceMs),
      lastError: this.lastError,
      failuresInARow: this.failures,
    };
  }
}
