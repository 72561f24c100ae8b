import type { Sql } from './client.js';

/**
 * citus mode: what the service's writing sessions (the writer's and the roller's) set for
 * themselves. A coordinator session keeps `citus.max_cached_conns_per_worker` connections
 * to each worker open between its transactions; Citus' default is 1. A batch over many
 * sites writes many shards of one worker at once, over up to
 * `citus.max_adaptive_executor_pool_size` connections (16 by default), and with one
 * cached each transaction opened the others again (TLS): a 50-site batch took 558-711 ms
 * against 78-82 ms with 32 (a trial on this machine, docs/storage.md). So these sessions
 * keep as many as one statement may open, or the server's setting where it is higher;
 * nothing for an operator to set. What the workers then see is in docs/operations.md
 * ("Connections"). test/db/citus-sessions.test.ts.
 */
export async function citusWriterSettings(sql: Sql): Promise<Record<string, string>> {
  const [row] = await sql<{ cached: number; pool: number }[]>`
    select current_setting('citus.max_cached_conns_per_worker')::int as cached, /* db/citus-sessions */
      current_setting('citus.max_adaptive_executor_pool_size')::int as pool
  `;
  return { 'citus.max_cached_conns_per_worker': String(Math.max(row!.cached, row!.pool)) };
}
