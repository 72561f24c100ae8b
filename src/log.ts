/**
 * Structured logs: one JSON object per line on stdout (errors on stderr), so that
 * `jq` and log shippers read them without a parser of ours.
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

function serializeError(err: unknown): unknown {
  if (!(err instanceof Error)) return err;
  const extra = err as Error & { code?: unknown; detail?: unknown };
  return { name: err.name, message: err.message, code: extra.code, detail: extra.detail, stack: err.stack };
}

export function createLogger(level: LogLevel, base: Record<string, unknown> = {}): Logger {
  const threshold = rank[level];
  const write = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: Record<string, unknown>): void => {
    if (rank[lvl] < threshold) return;
    const record: Record<string, unknown> = { time: new Date().toISOString(), level: lvl, msg, ...base };
    for (const [key, value] of Object.entries(fields ?? {})) record[key] = key === 'err' ? serializeError(value) : value;
    const line = JSON.stringify(record) + '\n';
    if (lvl === 'error' || lvl === 'warn') process.stderr.write(line);
    else process.stdout.write(line);
  };
  return {
    debug: (msg, fields) => write('debug', msg, fields),
    info: (msg, fields) => write('info', msg, fields),
    warn: (msg, fields) => write('warn', msg, fields),
    error: (msg, fields) => write('error', msg, fields),
  };
}

export const silentLogger: Logger = createLogger('silent');
