export interface PaceLimits {
  /** Below this, over a window in which the client kept the export waiting, it is ended (0: never). */
  minBytesPerSecond: number;
  slowWindowMs: number;
  /** Ended after this, however fast. */
  maxDurationMs: number;
}

/**
 * `chunks`, handed on as the response takes them, with a watch on how fast its client
 * reads: an export holds a pooled connection (in an open transaction, its cursor's) and
 * one of few export slots for as long as it runs, so one read too slowly is ended —
 * `end(reason)` is called once — when, over a window of `slowWindowMs`, the client kept
 * it waiting (the response did not want more) for most of the window and took less than
 * `minBytesPerSecond`; and any export is ended after `maxDurationMs`. Time spent waiting
 * for the database does not count against the client.
 */
export function paced(chunks: AsyncIterable<string>, limits: PaceLimits, end: (reason: string) => void): AsyncGenerator<string> {
  let windowBytes = 0;
  let clientWaitMs = 0;
  /** Since when the export waits for its client to take the last chunk (null: it is not waiting for it). */
  let waitingSince: number | null = null;
  let ended = false;
  const finish = (reason: string): void => {
    if (ended) return;
    ended = true;
    stop();
    end(reason);
  };
  const check = (): void => {
    const now = performance.now();
    if (waitingSince !== null) {
      clientWaitMs += now - waitingSince;
      waitingSince = now;
    }
    const floor = (limits.minBytesPerSecond * limits.slowWindowMs) / 1000;
    if (windowBytes < floor && clientWaitMs > limits.slowWindowMs / 2) {
      finish(
        `the client read ${Math.round((windowBytes * 1000) / limits.slowWindowMs)} bytes/s over ${limits.slowWindowMs} ms, below EXPORT_MIN_BYTES_PER_SECOND=${limits.minBytesPerSecond}`,
      );
    }
    windowBytes = 0;
    clientWaitMs = 0;
  };
  const window = limits.minBytesPerSecond > 0 ? setInterval(check, limits.slowWindowMs) : undefined;
  const longest = setTimeout(
    () => finish(`the export ran longer than EXPORT_MAX_DURATION_MS=${limits.maxDurationMs}`),
    limits.maxDurationMs,
  );
  const stop = (): void => {
    clearInterval(window);
    clearTimeout(longest);
  };
  return (async function* () {
    try {
      for await (const chunk of chunks) {
        windowBytes += chunk.length;
        waitingSince = performance.now();
        yield chunk;
        clientWaitMs += performance.now() - waitingSince;
        waitingSince = null;
      }
    } finally {
      stop();
    }
  })();
}
