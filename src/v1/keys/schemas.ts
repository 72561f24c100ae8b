import { z } from 'zod';
import { SITE_PATTERN, SITE_RULE } from '../../site.js';

/** The longest name a key made over HTTP may carry (the CLI's are free text too). */
export const KEY_NAME_MAX_CHARS = 200;

/**
 * `POST /v1/keys` (admin key): an ingest key for one site. Only ingest keys are made over
 * HTTP: they may only send events (safe in a page), while read and admin keys stay with
 * `npm run keys`, where the operator of the database makes them.
 */
export const NewKey = z
  .strictObject(
    {
      site: z.string({ error: 'is required: a site name' }).regex(SITE_PATTERN, SITE_RULE).meta({ example: 'shop' }),
      scope: z
        .literal('ingest', { error: 'must be ingest: read and admin keys are made with npm run keys' })
        .meta({ description: 'ingest: the only scope made over HTTP.' }),
      name: z
        .string({ error: 'must be a string' })
        .max(KEY_NAME_MAX_CHARS, `must be at most ${KEY_NAME_MAX_CHARS} characters`)
        .optional()
        .meta({ description: 'What it is for, shown by npm run keys -- list.', example: 'script on shop.example' }),
    },
    { error: (issue) => (issue.code === 'unrecognized_keys' ? `unknown field ${issue.keys.join(', ')}` : undefined) },
  )
  .meta({ id: 'NewKey' });
export type NewKey = z.infer<typeof NewKey>;

export const CreatedKey = z
  .object({
    key: z
      .string()
      .meta({
        description: 'The key: shown once, only its hash is kept.',
        example: 'hck_0c8M1cJ0yq3T6nF2b2sQ0Qm9v8Xg5hV6m3p1Yt4kZ7E',
      }),
    id: z.string().meta({ description: 'Its id (npm run keys -- revoke <id>).', example: '3f9c2a7b1e04' }),
    scope: z.literal('ingest'),
    site: z.string().meta({ example: 'shop' }),
    name: z.string(),
  })
  .meta({ id: 'CreatedKey' });
export type CreatedKey = z.infer<typeof CreatedKey>;
