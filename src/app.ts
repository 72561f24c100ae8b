import type { RequestListener } from 'node:http';
import Router from '@koa/router';
import Koa from 'koa';
import { registerAnalytics } from './analytics/routes.js';
import { registerCollect } from './collect/routes.js';
import { loadConfig, type ReadLimits } from './config.js';
import { DASHBOARD_DIR, registerDashboard } from './dashboard/routes.js';
import type { Sql } from './db/client.js';
import type { JobStatus } from './db/job-health.js';
import { registerHealth } from './health/routes.js';
import { withHotRoutes } from './hot-routes.js';
import { type BodyLimits, defaultBodyLimits } from './http/body.js';
import { errorEnvelope } from './http/middleware.js';
import { requestLog } from './http/request-log.js';
import type { GroupCommitWriter } from './ingest/writer.js';
import type { Logger } from './log.js';
import type { MetricsExposure } from './ops/metrics-access.js';
import { Metrics } from './ops/metrics.js';
import { Readiness, registerOps } from './ops/probes.js';
import { Rejections } from './ops/rejections.js';
import { registerPageViews } from './pageviews/routes.js';
import { AuthFailureLimit } from './v1/auth/failures.js';
import { KeyStore } from './v1/auth/keys.js';
import type { AuthDeps, Need } from './v1/auth/middleware.js';
import { type Bucket, RateLimiter } from './v1/auth/rate-limit.js';
import { registerV1 } from './v1/routes.js';
import { Collector } from './tracker/collector.js';
import { registerTracker } from './tracker/routes.js';
import { DEFAULT_TRACKER, type TrackerSettings } from './tracker/settings.js';

/** RATE_LIMIT_*'s, AUTH_FAILURES_*'s, STATS_*'s and EXPORT_*'s defaults (src/config.ts), for apps made without a configuration (tests). */
const { rateLimits: DEFAULT_RATE_LIMITS, authFailures: DEFAULT_AUTH_FAILURES, reads: DEFAULT_READ_LIMITS } = loadConfig({});

export interface AppDeps {
  sql: Sql;
  writer: GroupCommitWriter;
  /** The site of the seed APIs (DEFAULT_SITE). */
  site: string;
  /** Sent as Retry-After with every 503 (default 1). */
  retryAfterSeconds?: number;
  /** The background jobs' health (Runtime.jobs; default none). */
  jobs?: () => JobStatus[];
  /** Memory, deadline and rows of request bodies (see readJsonBody; default a 64 MiB budget). */
  bodies?: BodyLimits;
  /** Access-Control-Allow-Origin of POST /v1/events; default `*`. */
  corsAllowOrigin?: string;
  log: Logger;
  /** Default: a registry of its own, without process metrics. */
  metrics?: Metrics;
  /** Default: never draining; the background jobs of `jobs`. */
  readiness?: Readiness;
  /** One access log line per request (LOG_REQUESTS). */
  logRequests?: boolean;
  /** /v1 needs API keys (V1_AUTH=keys, the default) or not (none). */
  v1Auth?: 'keys' | 'none';
  /** Rate limits per key (RATE_LIMIT_*); default: the configuration's defaults. */
  rateLimits?: Record<Need, Bucket>;
  /** Where /metrics is served and what it needs (METRICS_*); default: here, open. */
  metricsExposure?: MetricsExposure;
  /** Failed key lookups per client address (AUTH_FAILURES_*); default: the configuration's defaults. */
  authFailures?: Bucket;
  /** Bounds on /v1/stats and /v1/export (STATS_*, EXPORT_*); default: the configuration's defaults. */
  reads?: ReadLimits;
  /** Serve the seed APIs (SEED_APIS; default true). */
  seedApis?: boolean;
  /** The dashboard at GET / (DASHBOARD), built into `dir`; default the build's dist/web. */
  dashboard?: { dir: string } | false;
  /** TRACKER_SCRIPT_PATH, TRUST_PROXY, TRACKER_COUNTRY; default: /script.js only, no proxy, countries on. */
  tracker?: TrackerSettings;
  /** The collector's clock (tests of the daily salts); default Date.now. */
  now?: () => number;
}

/** The HTTP application: middleware order and routes. Never listens; no side effects. */
export const createApp = (given: AppDeps): Koa => createService(given).app;

export interface Service {
  /** Every route, behind the middleware chain. */
  app: Koa;
  /**
   * What the server runs: the hot write routes (the seed APIs' and POST /v1/events) in
   * front of `app` (src/hot-routes.ts; not with an access log, which only Koa writes).
   * Made when called, from `app` as it is then.
   */
  listener(): RequestListener;
}

/** The application and the request listener a server runs it with. */
export function createService(given: AppDeps): Service {
  const retryAfterSeconds = given.retryAfterSeconds ?? 1;
  const deps = {
    ...given,
    retryAfterSeconds,
    jobs: given.jobs ?? (() => []),
    bodies: given.bodies ?? defaultBodyLimits(retryAfterSeconds),
  };
  const metrics = deps.metrics ?? new Metrics();
  const readiness = deps.readiness ?? new Readiness(deps.jobs);
  const app = new Koa();
  // Koa's default prints what reaches the app's error event to stderr, stack and all: a
  // client that goes away mid-response (an export it abandoned or that was cut for reading
  // too slowly) is no fault of the service, so it is a debug line; the rest goes to the log.
  app.on('error', (err: unknown) => {
    const code = (err as { code?: unknown } | null)?.code;
    const gone = code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE';
    if (gone) deps.log.debug({ err }, 'client went away mid-response');
    else deps.log.error({ err }, 'response failed');
  });
  app.use(requestLog(deps.log, { accessLog: deps.logRequests ?? false }));
  app.use(metrics.http());
  const rejections = new Rejections(metrics, deps.log);
  app.use(errorEnvelope(rejections, retryAfterSeconds));

  const router = new Router();
  if (deps.seedApis ?? true) {
    registerCollect(router, deps);
    registerAnalytics(router, deps);
    registerPageViews(router, deps);
  }
  registerHealth(router, deps);
  registerOps(router, { sql: deps.sql, metrics, readiness, metricsExposure: deps.metricsExposure });
  const auth: AuthDeps = {
    limiter: new RateLimiter(deps.sql),
    keys: (deps.v1Auth ?? 'keys') === 'keys' ? new KeyStore(deps.sql, metrics.keyLookedUp) : null,
    limits: deps.rateLimits ?? DEFAULT_RATE_LIMITS,
    failures: new AuthFailureLimit(deps.authFailures ?? DEFAULT_AUTH_FAILURES),
  };
  const trackerSettings = deps.tracker ?? DEFAULT_TRACKER;
  const tracker = new Collector(deps.sql, trackerSettings, metrics.botsDropped, deps.now);
  const corsAllowOrigin = deps.corsAllowOrigin ?? '*';
  registerV1(router, { ...deps, corsAllowOrigin, auth, reads: deps.reads ?? DEFAULT_READ_LIMITS, tracker });
  const dashboard = deps.dashboard ?? { dir: DASHBOARD_DIR };
  if (dashboard) registerDashboard(router, { dir: dashboard.dir, scriptPath: trackerSettings.scriptPath, log: deps.log });
  // The tracker is served with or without the dashboard, from the same build.
  registerTracker(router, { dir: dashboard ? dashboard.dir : DASHBOARD_DIR, scriptPath: trackerSettings.scriptPath, log: deps.log });
  app.use(router.routes());
  app.use(router.allowedMethods());
  return {
    app,
    listener() {
      const handle = app.callback();
      const koa: RequestListener = (req, res) => void handle(req, res);
      if (deps.logRequests) return koa;
      return withHotRoutes(
        {
          writer: deps.writer,
          site: deps.site,
          metrics,
          rejections,
          retryAfterSeconds,
          log: deps.log,
          seedApis: deps.seedApis ?? true,
          events: { writer: deps.writer, site: deps.site, bodies: deps.bodies, tracker, auth, corsAllowOrigin },
        },
        koa,
      );
    },
  };
}
