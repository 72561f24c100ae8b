import { z } from 'zod';
import { createDocument, type ZodOpenApiResponsesObject } from 'zod-openapi';
import { AnalyticsReadQuery, AnalyticsWriteQuery } from '../../analytics/schemas.js';
import { CollectQuery, UniquesQuery } from '../../collect/schemas.js';
import { ErrorEnvelope } from '../../http/errors.js';
import { PageViewMultiBody, PageViewResponse, PageViewSingleBody, ReportQuery, ReportResponse } from '../../pageviews/schemas.js';
import { EventsBody, EventsResponse, V1Event } from '../events/schemas.js';
import { ExportedEvent, ExportQuery } from '../export/schemas.js';
import { CreatedKey, NewKey } from '../keys/schemas.js';
import { NewSite, Site, SitePath, SiteSettings, SitesResponse } from '../sites/schemas.js';
import { StatsQuery, StatsResponse } from '../stats/schemas.js';
import { VERSION } from '../../version.js';

/**
 * The OpenAPI 3.1 document of every route, generated from the zod schemas the routes
 * parse with (request side: what a client sends) and answer with.
 */

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });
const text = (example: string) => ({ 'text/plain': { schema: z.string().meta({ example }) } });
const error = (description: string) => ({ description, content: json(ErrorEnvelope) });
const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' as const } } };
const unavailable = {
  description: 'The database is unavailable or the ingest queue is full: retry after Retry-After seconds.',
  headers: retryAfter,
  content: json(ErrorEnvelope),
};

/** Errors every route may answer. */
const common: ZodOpenApiResponsesObject = {
  '400': error('A parameter or the body is invalid: details name each one and why.'),
  '503': unavailable,
};
const writeErrors: ZodOpenApiResponsesObject = {
  ...common,
  '408': error('The body did not arrive within HTTP_BODY_TIMEOUT_MS of the headers; the connection closes.'),
  '413': error('The body is too large, or becomes more rows than HTTP_MAX_ROWS_PER_REQUEST (too_many_rows).'),
  '415': error('The body is not JSON by its Content-Type.'),
  '422': error('The database refused the events.'),
};

/** What a read of /v1 may answer besides: its key's share of running reads is taken. */
const readErrors = (what: string): ZodOpenApiResponsesObject => ({
  '429': {
    description: `Too many requests with this key (rate_limited), or this key has as many ${what} running as one key may (too_many_concurrent): retry after Retry-After seconds.`,
    headers: retryAfter,
    content: json(ErrorEnvelope),
  },
});

/** What a request with a key may answer besides (the /v1/sites routes). */
const authErrors = (forbidden: string): ZodOpenApiResponsesObject => ({
  '401': error('No key, or a malformed, unknown or revoked one.'),
  '403': error(forbidden),
});
const keyErrors = (forbidden: string): ZodOpenApiResponsesObject => ({
  ...authErrors(forbidden),
  '429': {
    description: 'Too many requests with this key (rate_limited): retry after Retry-After seconds.',
    headers: retryAfter,
    content: json(ErrorEnvelope),
  },
});

/** What a read of an unknown site answers an admin key (other keys get 403 for another site). */
const unknownSiteError = error('No such site (unknown_site): answered to an admin key only.');

/** A seed route that takes its input as query parameters. */
const seedQuery = (summary: string, query: z.ZodType<unknown, Record<string, unknown>>, ok: ZodOpenApiResponsesObject) => ({
  tags: ['seeds'],
  summary,
  requestParams: { query },
  responses: { ...ok, ...common },
});
/** A seed route that takes a JSON body and answers {"success":true}. */
const seedBody = (summary: string, body: z.ZodType) => ({
  tags: ['seeds'],
  summary,
  requestBody: { required: true, content: json(body) },
  responses: { '200': { description: 'Stored.', content: json(PageViewResponse) }, ...writeErrors },
});
const count = { '200': { description: 'The count and a newline.', content: text('2\n') } };

let built: ReturnType<typeof createDocument> | undefined;

export function openApiDocument(): ReturnType<typeof createDocument> {
  built ??= createDocument({
    openapi: '3.1.0',
    info: {
      title: 'headcount',
      version: VERSION,
      description:
        'Collects analytics events and answers distinct users and event counts per hour, day and any range. ' +
        'Every error answers {"error":{"code","message","details?"}}. Writes are answered after they commit.',
    },
    tags: [
      { name: 'v1', description: 'The API of headcount.' },
      { name: 'seeds', description: 'Compatible with five known analytics services; on DEFAULT_SITE, times in GMT.' },
    ],
    components: { schemas: { Event: V1Event } },
    paths: {
      '/v1/events': {
        post: {
          tags: ['v1'],
          summary: 'Send a batch of events',
          description:
            'Each event is checked on its own: the valid ones commit together, the others are reported by index. ' +
            'A text/plain body holding JSON is read too (navigator.sendBeacon). CORS: Access-Control-Allow-Origin is CORS_ALLOW_ORIGIN.',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: EventsBody }, 'text/plain': { schema: EventsBody } },
          },
          responses: {
            '200': {
              description: 'Valid events stored (or already stored: duplicates); invalid ones listed.',
              content: json(EventsResponse),
            },
            '400': error(
              'The body is not {"events":[...]}, or every event is invalid: details list each rejection ({index, code, message, field}).',
            ),
            ...writeErrors,
            '413': error('More than 10,000 events (or HTTP_MAX_ROWS_PER_REQUEST, if lower) or 5 MiB.'),
          },
        },
        options: {
          tags: ['v1'],
          summary: 'CORS preflight',
          responses: { '204': { description: 'Allowed: POST with Content-Type, from CORS_ALLOW_ORIGIN.' } },
        },
      },
      '/v1/stats': {
        get: {
          tags: ['v1'],
          summary: 'Distinct users and events per bucket of a range',
          description:
            'Buckets in the local calendar of timezone, zero-filled; users is the distinct count over exactly that bucket ' +
            '(a union of hll sketches, never a sum). The same as the SQL function headcount_stats. Before the 60-day raw ' +
            'retention only whole UTC days at day granularity or coarser can be answered; minute granularity covers at most 48 hours. ' +
            'A request for more than STATS_MAX_ROWS rows (buckets × groups) is refused with 400 too_expensive, saying what to ask instead.',
          requestParams: { query: StatsQuery },
          responses: {
            '200': { description: 'The buckets.', content: json(StatsResponse) },
            ...common,
            ...authErrors('An ingest key, or a key bound to another site (the same answer whether that site exists or not).'),
            '404': unknownSiteError,
            ...readErrors('stats queries'),
            '503': {
              ...unavailable,
              description: 'Too many stats queries at once (stats_busy), or the database is unavailable.',
            },
          },
        },
      },
      '/v1/export': {
        get: {
          tags: ['v1'],
          summary: 'The raw events of a range, streamed',
          description:
            'Oldest first. Content-Disposition names the file; the body has no length (streamed). An export its client reads ' +
            'slower than EXPORT_MIN_BYTES_PER_SECOND, or that runs longer than EXPORT_MAX_DURATION_MS, is cut short.',
          requestParams: { query: ExportQuery },
          responses: {
            '200': {
              description: 'NDJSON: one event per line; CSV: a header, then one event per row (RFC 4180).',
              headers: {
                'Content-Disposition': {
                  schema: { type: 'string' },
                  description: 'attachment; filename="headcount-<site>-<from>-<to>.<format>"',
                },
              },
              content: {
                'application/x-ndjson': { schema: ExportedEvent },
                'text/csv': { schema: z.string().meta({ example: 'time,site,kind,user,page,weight,id\r\n' }) },
              },
            },
            ...common,
            ...authErrors('An ingest key, or a key bound to another site (the same answer whether that site exists or not).'),
            '404': unknownSiteError,
            ...readErrors('exports'),
            '503': { ...unavailable, description: 'Too many exports at once, or the database is unavailable.' },
          },
        },
      },
      '/v1/sites': {
        get: {
          tags: ['v1'],
          summary: 'The sites this key may read',
          description:
            'Each with its settings and its first and last event and event count, events acknowledged a moment ago included. ' +
            'An admin key sees every site (a site exists once it has an event or was created); a key bound to a site sees that one.',
          responses: {
            '200': { description: 'The sites, by name.', content: json(SitesResponse) },
            ...common,
            ...keyErrors('An ingest key (it cannot read).'),
          },
        },
        post: {
          tags: ['v1'],
          summary: 'Create a site with its settings (admin key)',
          description: 'Sites are also created by their first event.',
          requestBody: { required: true, content: json(NewSite) },
          responses: {
            '201': { description: 'Created.', content: json(Site) },
            '409': error('The site exists already (site_exists): change it with PATCH.'),
            ...writeErrors,
            ...keyErrors('Not an admin key.'),
          },
        },
      },
      '/v1/sites/{site}': {
        get: {
          tags: ['v1'],
          summary: 'One site',
          requestParams: { path: SitePath },
          responses: {
            '200': { description: 'The site.', content: json(Site) },
            '404': error('No such site (unknown_site): answered to an admin key; a key bound to a site gets 403 for another.'),
            ...common,
            ...keyErrors('An ingest key, or a key bound to another site.'),
          },
        },
        patch: {
          tags: ['v1'],
          summary: "Change a site's settings (admin key)",
          description:
            'Sets what is given: timezone (null clears it), props and combinations (each replaces its list). A declaration ' +
            'removed deletes its rollup rows; one kept keeps them.',
          requestParams: { path: SitePath },
          requestBody: { required: true, content: json(SiteSettings) },
          responses: {
            '200': { description: 'The site as it is now.', content: json(Site) },
            '404': error('No such site (unknown_site).'),
            ...writeErrors,
            ...keyErrors('Not an admin key.'),
          },
        },
      },
      '/v1/keys': {
        post: {
          tags: ['v1'],
          summary: 'Create an ingest key for a site (admin key)',
          description:
            'The key is in the answer only: the database keeps its hash. Only ingest keys (safe in a page: they may only ' +
            'send events) are made over HTTP; read and admin keys with npm run keys. Revoke with npm run keys -- revoke <id>.',
          requestBody: { required: true, content: json(NewKey) },
          responses: {
            '201': { description: 'Created.', content: json(CreatedKey) },
            ...writeErrors,
            ...keyErrors('Not an admin key.'),
          },
        },
      },
      '/v1/openapi.json': {
        get: {
          tags: ['v1'],
          summary: 'This document',
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: z.looseObject({}) } } } },
        },
      },
      '/docs': {
        get: {
          tags: ['v1'],
          summary: 'This document, rendered',
          responses: { '200': { description: 'HTML', content: { 'text/html': { schema: z.string() } } } },
        },
      },
      '/collect': {
        get: seedQuery('Record a visit (seed 000)', CollectQuery, { '200': { description: 'Stored; empty body.' } }),
      },
      '/daily_uniques': {
        get: seedQuery('Distinct users of a GMT day (seed 000)', UniquesQuery, count),
      },
      '/monthly_uniques': {
        get: seedQuery('Distinct users of the 30 GMT days ending on d (seed 000)', UniquesQuery, count),
      },
      '/analytics': {
        post: seedQuery('Record a click or an impression (seeds 001, 002, 004)', AnalyticsWriteQuery, {
          '204': { description: 'Stored.' },
        }),
        get: seedQuery('Users, clicks and impressions of the GMT hour holding timestamp', AnalyticsReadQuery, {
          '200': { description: 'Three lines.', content: text('unique_users,2\nclicks,1\nimpressions,1\n') },
        }),
      },
      '/page-views/single': {
        post: seedBody('Record a page view (seed 003)', PageViewSingleBody),
      },
      '/page-views/multi': {
        post: seedBody('Record page view counts, all or nothing (seed 003)', PageViewMultiBody),
      },
      '/report': {
        get: seedQuery('Page views of the 24 complete GMT hours before now (seed 003)', ReportQuery, {
          '200': { description: 'Hours, oldest first.', content: json(ReportResponse) },
        }),
      },
      '/health': {
        get: {
          tags: ['seeds'],
          summary: 'Whether the database answers (seed 003)',
          responses: {
            '200': { description: 'It does.', content: json(z.object({ status: z.literal('ok') })) },
            '503': unavailable,
          },
        },
      },
    },
  });
  return built;
}
