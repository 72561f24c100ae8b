import type { Logger } from '../log.js';
import type { Sql } from './client.js';
import { withDeadline } from './deadline.js';

/**
 * citus mode: which worker holds each site's rows (its node group), for the writer to
 * flush requests of one worker together (ingest/writer.ts, groupOf). A transaction then
 * touches one worker, and a worker that is down or slow fails only the requests of its
 * own sites: mixed with others, a batch holding one of its sites failed whole. Learned
 * from Citus' metadata on the coordinator (a site's shard, and where that shard is), a
 * few sites a query, in the background: a site not known yet flushes with the other
 * unknown and mixed requests, as every request did before. Looked up again every
 * `refreshMs`, so that a rebalance is followed; a stale answer only mixes workers in a
 * batch, as before. Bounded: past `maxSites`, it starts over.
 * test/faults/outage.test.ts ("a worker down fails only the requests of its own sites").
 */
export class SitePlacement {
  private groups = new Map<string, string>();
  private readonly unknown = new Set<string>();
  private looking = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly log: Logger,
    private readonly refreshMs = 10_000,
    private readonly maxSites = 10_000,
  ) {}

  start(): void {
    this.timer = setInterval(() => {
      for (const site of this.groups.keys()) this.unknown.add(site);
      this.lookUp(true);
    }, this.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** The node group holding the site of every row of `rows`, when they share one and it is known. */
  readonly groupOf = (rows: readonly { site: string }[]): string | undefined => {
    const site = rows[0]?.site;
    if (site === undefined) return undefined;
    for (const row of rows) if (row.site !== site) return undefined;
    const group = this.groups.get(site);
    if (group === undefined && this.unknown.size < this.maxSites) {
      this.unknown.add(site);
      this.lookUp(false);
    }
    return group;
  };

  private lookUp(all: boolean): void {
    if (this.looking || this.unknown.size === 0) return;
    this.looking = true;
    const sites = [...this.unknown];
    this.unknown.clear();
    void withDeadline(
      this.sql<{ site: string; group: string }[]>`
        select s.site, p.groupid::text as group /* db/citus-placement */
        from unnest(${sites}::text[]) s(site)
        join pg_dist_placement p on p.shardid = get_shard_id_for_distribution_column('events', s.site)
      `,
    )
      .then((rows) => {
        const groups = all || this.groups.size + rows.length > this.maxSites ? new Map<string, string>() : this.groups;
        for (const row of rows) groups.set(row.site, row.group);
        this.groups = groups;
      })
      .catch((err: unknown) => {
        // Not known, those sites' requests flush with any: as before, nothing lost.
        this.log.debug({ err }, 'where sites are on the Citus workers could not be read now');
      })
      .finally(() => {
        this.looking = false;
        if (this.unknown.size > 0) setImmediate(() => this.lookUp(false));
      });
  }
}
