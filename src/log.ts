import os from 'node:os';
import pino from 'pino';

/**
 * Structured logs with pino: one JSON object per line on stdout, so that `jq` and log
 * shippers read them without a parser of ours. Call sites use pino's own API,
 * `log.info({ fields }, 'message')`; `err` fields keep their `cause` chain.
 */
export type Logger = pino.Logger;
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

export function createLogger(
  level: LogLevel,
  bindings: Record<string, unknown> = {},
  /** Default: pino's, synchronous writes to stdout (no line lost at process.exit). */
  destination?: pino.DestinationStream,
): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { pid: process.pid, hostname: os.hostname(), ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Level names rather than pino's numbers: `jq 'select(.level == "error")'`.
    formatters: { level: (label) => ({ level: label }) },
    // The whole `cause` chain as nested objects, each with its own code and stack.
    serializers: { err: pino.stdSerializers.errWithCause },
  };
  return destination ? pino(options, destination) : pino(options);
}

export const silentLogger: Logger = pino({ level: 'silent' });
