/**
 * Server-side latency from the service's own /metrics: the histogram
 * headcount_http_request_duration_seconds, scraped before and after a run, so the
 * difference holds that run's requests only.
 */

/** Cumulative bucket counts (le in seconds -> count) of one method and route, every status. */
export type Buckets = Map<number, number>;

export async function scrapeBuckets(baseUrl: string, method: string, route: string): Promise<Buckets | undefined> {
  let text: string;
  try {
    const res = await fetch(`${baseUrl}/metrics`);
    if (res.status !== 200) return undefined;
    text = await res.text();
  } catch {
    return undefined;
  }
  const buckets: Buckets = new Map();
  const re = /^headcount_http_request_duration_seconds_bucket\{([^}]*)\} (\S+)$/gm;
  for (const m of text.matchAll(re)) {
    const labels: Record<string, string> = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1]!, l[2]!]));
    if (labels.method !== method || labels.route !== route) continue;
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  return buckets.size > 0 ? buckets : undefined;
}

/**
 * The q-quantile (ms) of the requests between two scrapes, interpolated linearly inside
 * its bucket as Prometheus's histogram_quantile does: as coarse as the buckets.
 */
export function quantileBetween(before: Buckets | undefined, after: Buckets | undefined, q: number): number {
  if (!after) return NaN;
  const les = [...after.keys()].sort((a, b) => a - b);
  const counts = les.map((le) => after.get(le)! - (before?.get(le) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (counts[i]! >= rank) {
      const upper = les[i]!;
      const lower = i === 0 ? 0 : les[i - 1]!;
      if (!Number.isFinite(upper)) return lower * 1000;
      const below = i === 0 ? 0 : counts[i - 1]!;
      const inBucket = counts[i]! - below;
      return (lower + (upper - lower) * (inBucket > 0 ? (rank - below) / inBucket : 1)) * 1000;
    }
  }
  return NaN;
}

/** Rows and flushes the writer has made so far (headcount_ingest_batch_rows), for the mean batch of a run. */
export async function scrapeBatches(baseUrl: string): Promise<{ rows: number; flushes: number } | undefined> {
  try {
    const res = await fetch(`${baseUrl}/metrics`);
    if (res.status !== 200) return undefined;
    const text = await res.text();
    const value = (name: string): number =>
      [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((n, m) => n + Number(m[1]), 0);
    return { rows: value('headcount_ingest_batch_rows_sum'), flushes: value('headcount_ingest_batch_rows_count') };
  } catch {
    return undefined;
  }
}
