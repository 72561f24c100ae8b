import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql } from '../src/db/client.js';
import type { EventRow } from '../src/ingest/writer.js';

const copyText = (v: string | null): string =>
  v === null ? '\\N' : v.replace(/[\\\t\n\r]/g, (c) => ({ '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' })[c]!);

/** One COPY … FROM STDIN of `rows` into events (its trigger fires once, as for the writer's insert). */
export async function copyEvents(sql: Sql, rows: EventRow[]): Promise<void> {
  const text = rows
    .map(
      (r) =>
        `${r.site}\t${new Date(r.timeMs).toISOString()}\t${copyText(r.kind)}\t${copyText(r.userId)}\t${copyText(r.page)}\t${r.weight}\n`,
    )
    .join('');
  const stream = await sql`copy events (site, time, kind, user_id, page, weight) from stdin`.writable();
  await pipeline(Readable.from([text]), stream);
}
