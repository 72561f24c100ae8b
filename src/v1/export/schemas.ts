import { z } from 'zod';
import { STANDARD_DIMENSIONS, type StandardDimension } from '../../dimensions.js';
import { enumParam } from '../../http/params.js';
import { rangeBoundParam, siteParam, timezoneParam } from '../params.js';

export const EXPORT_FORMATS = ['ndjson', 'csv'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

/** `GET /v1/export` */
export const ExportQuery = z.strictObject(
  {
    site: siteParam().optional(),
    from: rangeBoundParam('Start of the range (inclusive): an ISO 8601 instant with its zone, or a date read in timezone.'),
    to: rangeBoundParam('End of the range (exclusive): an ISO 8601 instant with its zone, or a date read in timezone.'),
    timezone: timezoneParam().optional(),
    format: enumParam(EXPORT_FORMATS)
      .optional()
      .meta({ description: 'ndjson (default): one JSON event per line; csv: with a header row.' }),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown parameter ${issue.keys.join(', ')}` : undefined) },
);
export type ExportQuery = z.infer<typeof ExportQuery>;

const dimension = (name: StandardDimension) =>
  z
    .string()
    .optional()
    .meta({ description: `As stored (POST /v1/events ${name}); absent when the event has none.` });

/**
 * One line of an NDJSON export: the fields of POST /v1/events as stored, so an export can
 * be sent back as it is. The dimensions and props appear only when the event has them.
 */
export const ExportedEvent = z
  .object({
    time: z.string().meta({ example: '2026-11-23T10:00:00.000Z' }),
    site: z.string(),
    kind: z.string(),
    user: z.string().nullable().meta({ description: 'null for the page views of seed 003, which carry no user.' }),
    page: z.string(),
    weight: z.int(),
    id: z.string().nullable(),
    ...(Object.fromEntries(STANDARD_DIMENSIONS.map((name) => [name, dimension(name)])) as Record<
      StandardDimension,
      ReturnType<typeof dimension>
    >),
    props: z
      .record(z.string(), z.string())
      .optional()
      .meta({ description: 'As stored; absent when the event has none.', example: { plan: 'pro' } }),
  })
  .meta({ id: 'ExportedEvent' });
