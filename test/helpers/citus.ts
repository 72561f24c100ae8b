import { createSql, type Sql } from '../../src/db/client.js';
import type { LocalCitusCluster } from '../../src/db/local-cluster.js';
import { startTestApp, type TestApp } from './app.js';

/** The service's database on one node of a Citus cluster, as the cluster's superuser (an operator) reaches it. */
export function superuserSql(nodeAdminUrl: string): Sql {
  const url = new URL(nodeAdminUrl);
  url.pathname = '/headcount';
  return createSql(url.toString(), { max: 1 });
}

/** The app on a cluster of a test's own (migrated by the test); close() ends its pool too, the cluster stays. */
export async function startTestAppOnCluster(cluster: LocalCitusCluster): Promise<TestApp> {
  const sql = createSql(cluster.url, { max: 5, applicationName: 'headcount-test' });
  const app = await startTestApp('citus', {}, { url: cluster.url, sql, reset: async () => {}, drop: () => sql.end() });
  return {
    ...app,
    async close() {
      await app.close();
      await sql.end();
    },
  };
}
