import { z } from 'zod';
import {
  checkIsoTimestamp,
  enumParam,
  hasNul,
  intParam,
  NUL_MESSAGE,
  isoTimestampParam,
  stringOr,
  textParam,
  toIsoTimestamp,
} from '../http/params.js';
import type { EventRow } from '../ingest/writer.js';

const PAGE_MAX_CHARS = 2048;
/** Counts are stored as one row with this weight: a PostgreSQL integer. */
const COUNT_MAX = 2_147_483_647;

const pageProblem = (page: string): string | null =>
  page.length === 0
    ? 'must not be empty'
    : page.length > PAGE_MAX_CHARS
      ? `must be at most ${PAGE_MAX_CHARS} characters`
      : hasNul(page)
        ? NUL_MESSAGE
        : null;

/** `POST /page-views/single` `{"page": "...", "timestamp": "<ISO 8601>"}` (seed 003). */
export const PageViewSingleBody = z.object(
  {
    page: stringOr('must be a string')
      .min(1, 'must not be empty')
      .max(PAGE_MAX_CHARS, `must be at most ${PAGE_MAX_CHARS} characters`)
      .refine((page) => !hasNul(page), NUL_MESSAGE),
    timestamp: stringOr('must be an ISO 8601 date-time string').transform(toIsoTimestamp()),
  },
  { error: 'must be a JSON object {"page": "...", "timestamp": "<ISO 8601>"}' },
);
export type PageViewSingleBody = z.infer<typeof PageViewSingleBody>;

/**
 * `POST /page-views/multi` `{"<page>": {"<time>": count}}` (seed 003) to event rows,
 * one row per (page, time) carrying the count as its weight. A zero count stores
 * nothing; any bad entry fails the whole request.
 */
export const PageViewMultiBody = z
  .record(z.string(), z.record(z.string(), z.unknown(), { error: 'must be an object of {"<time>": count}' }), {
    error: 'must be a JSON object {"<page>": {"<time>": count}}',
  })
  .transform((body, ctx): Omit<EventRow, 'site'>[] => {
    const rows: Omit<EventRow, 'site'>[] = [];
    if (Object.values(body).every((times) => Object.keys(times).length === 0)) {
      ctx.addIssue({ code: 'custom', message: 'has no page views: send {"<page>": {"<time>": count}} with at least one time' });
    }
    for (const [page, times] of Object.entries(body)) {
      const badPage = pageProblem(page);
      if (badPage) ctx.addIssue({ code: 'custom', path: [page], message: `page name ${badPage}` });
      for (const [time, count] of Object.entries(times)) {
        const checked = checkIsoTimestamp(time, { pageViewKey: true });
        if ('problem' in checked) ctx.addIssue({ code: 'custom', path: [page, time], message: `time ${checked.problem}` });
        if (typeof count !== 'number' || !Number.isInteger(count) || count < 0 || count > COUNT_MAX) {
          ctx.addIssue({ code: 'custom', path: [page, time], message: `count must be a whole number from 0 to ${COUNT_MAX}` });
        } else if (!badPage && 'ms' in checked && count > 0) {
          rows.push({ timeMs: checked.ms, kind: 'pageview', userId: null, page, weight: count });
        }
      }
    }
    return rows;
  });

/**
 * The rows a `/page-views/multi` body not yet validated may become: one per page and
 * time. Counted on the parsed JSON before it is validated, so that a body of more rows
 * than a request may hold is refused before it is copied and checked entry by entry.
 */
export function pageViewRows(body: unknown): number {
  if (typeof body !== 'object' || body === null) return 0;
  let rows = 0;
  for (const times of Object.values(body) as unknown[]) {
    if (typeof times !== 'object' || times === null) continue;
    for (const time in times) if (Object.hasOwn(times, time)) rows++;
  }
  return rows;
}

export const PageViewResponse = z.object({ success: z.literal(true) });

/** `GET /report?page=&now=&order=asc|desc&take=` (seed 003). */
export const ReportQuery = z.object({
  page: textParam('a page', PAGE_MAX_CHARS),
  now: isoTimestampParam().optional(),
  order: enumParam(['asc', 'desc']).optional(),
  take: intParam(0, 1_000_000_000).optional(),
});
export type ReportQuery = z.infer<typeof ReportQuery>;

export const ReportResponse = z.object({
  data: z.array(
    z.object({
      h: z.int().min(0).max(23).meta({ description: 'GMT hour of day' }),
      v: z.int().nonnegative().meta({ description: 'page views in that hour' }),
    }),
  ),
});
