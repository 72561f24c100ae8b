import { z } from 'zod';
import { dayParam, epochParam, textParam } from '../http/params.js';

/** `GET /collect?cid=<id>[&d=<unix seconds>]` (seed 000). */
export const CollectQuery = z.object({
  cid: textParam('a client id', 256),
  d: epochParam('seconds').optional(),
});
export type CollectQuery = z.infer<typeof CollectQuery>;

/** `GET /daily_uniques?d=<date>` and `GET /monthly_uniques?d=<date>`; `d` defaults to today (GMT). */
export const UniquesQuery = z.object({
  d: dayParam().optional(),
});
export type UniquesQuery = z.infer<typeof UniquesQuery>;
