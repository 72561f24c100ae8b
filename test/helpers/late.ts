import type { TestApp } from './app.js';

/**
 * Materializes both aggregates as the refresh policies would (timescaledb mode), so
 * that an event written next lands below the watermark: the case where back-dated
 * events need the service's refresh to show. Nothing to do in postgres mode.
 */
export async function materializeAggregates(t: TestApp): Promise<void> {
  if (t.runtime.mode !== 'timescaledb') return;
  await t.db
    .sql`call refresh_continuous_aggregate('events_hourly', now() - interval '60 days', date_trunc('hour', now()) - interval '1 hour')`;
  await t.db
    .sql`call refresh_continuous_aggregate('events_daily', now() - interval '60 days', date_trunc('day', now()) - interval '1 day')`;
}
