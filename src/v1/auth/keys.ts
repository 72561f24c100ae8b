import { hash, randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { deadlineOf, type Sql } from '../../db/client.js';
import { withDeadline } from '../../db/deadline.js';

export const SCOPES = ['ingest', 'read', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** What a key lets its holder do: a scope, on one site or (admin keys) every site. */
export interface Principal {
  keyId: string;
  scope: Scope;
  /** null: every site. */
  site: string | null;
}

/** Recognisable in logs and secret scanners; 32 random bytes (256 bits) follow. */
export const KEY_PREFIX = 'hck_';
const KEY_FORMAT = /^hck_[A-Za-z0-9_-]{43}$/;

export const isWellFormedKey = (key: string): boolean => KEY_FORMAT.test(key);
const sha256 = (key: string): Buffer => hash('sha256', key, 'buffer');

export interface KeyRecord {
  id: string;
  scope: Scope;
  site: string | null;
  name: string;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

/** Makes a key and stores its hash; the key itself is returned once and kept nowhere. */
export async function createKey(
  sql: Sql,
  opts: { scope: Scope; site: string | null; name: string },
): Promise<{ key: string; record: KeyRecord }> {
  const key = KEY_PREFIX + randomBytes(32).toString('base64url');
  const id = randomBytes(6).toString('hex');
  const [record]: [KeyRecord?] = await sql`
    insert into headcount_api_keys (id, key_sha256, scope, site, name) /* v1/auth/createKey */
    values (${id}, ${sha256(key)}, ${opts.scope}, ${opts.site}, ${opts.name})
    returning id, scope, site, name, created_at, last_used_at, revoked_at
  `;
  return { key, record: record! };
}

export const listKeys = (sql: Sql): Promise<KeyRecord[]> =>
  sql<KeyRecord[]>`
    select id, scope, site, name, created_at, last_used_at, revoked_at /* v1/auth/listKeys */
    from headcount_api_keys
    order by created_at, id
  `;

/** Returns false when there is no such key (or it was revoked already). */
export async function revokeKey(sql: Sql, id: string): Promise<boolean> {
  const rows = await sql`
    update headcount_api_keys set revoked_at = now() /* v1/auth/revokeKey */
    where id = ${id} and revoked_at is null
  `;
  return rows.count === 1;
}

/** How long an instance trusts what it read of a key: revocation reaches every instance within this. */
const CACHE_TTL_MS = 1000;
/** last_used_at is a day-to-day aid, not an audit log: written at most this often per key. */
const TOUCH_EVERY_MS = 60_000;

/**
 * Looks keys up by their hash, remembering each answer (found or not: a negative cache)
 * for a second, so that a busy key costs one query a second per instance: concurrent requests with a key
 * not in the cache wait for one lookup (lru-cache's fetch). The cache is keyed by the key
 * itself, in this process's memory only, so that a request with a known key costs no
 * hashing.
 */
export class KeyStore {
  private readonly cache: LRUCache<string, { principal: Principal | null }>;
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly sql: Sql,
    /** Called after each database lookup (metrics: headcount_key_lookups_total). */
    private readonly onLookup: (found: boolean) => void = () => {},
  ) {
    this.cache = new LRUCache({
      max: 10_000,
      ttl: CACHE_TTL_MS,
      fetchMethod: async (key) => {
        const [row]: [{ id: string; scope: Scope; site: string | null }?] = await withDeadline(
          this.sql`
            select id, scope, site /* v1/auth/principal */
            from headcount_api_keys
            where key_sha256 = ${sha256(key)} and revoked_at is null
          `,
          deadlineOf(this.sql),
        );
        this.onLookup(row !== undefined);
        return { principal: row ? { keyId: row.id, scope: row.scope, site: row.site } : null };
      },
    });
  }

  /**
   * The key's principal, or null when it is unknown or revoked: at once when this
   * instance looked the key up less than a second ago, else after the lookup.
   */
  principal(key: string): Principal | null | Promise<Principal | null> {
    const found = this.cache.get(key);
    if (found) return this.used(found.principal);
    return this.cache.fetch(key).then((fetched) => this.used(fetched?.principal ?? null));
  }

  /**
   * What this instance read of the key less than a second ago: its principal, null (unknown
   * or revoked), or undefined when it would take a lookup.
   */
  cached(key: string): Principal | null | undefined {
    const found = this.cache.get(key);
    return found ? this.used(found.principal) : undefined;
  }

  private used(principal: Principal | null): Principal | null {
    if (principal) this.touch(principal.keyId);
    return principal;
  }

  private touch(keyId: string): void {
    const now = Date.now();
    if (now - (this.touched.get(keyId) ?? 0) < TOUCH_EVERY_MS) return;
    this.touched.set(keyId, now);
    // Not awaited: a request does not wait for bookkeeping, and a failure costs nothing.
    this.sql`update headcount_api_keys set last_used_at = now() where id = ${keyId} /* v1/auth/touch */`.catch(() => {
      this.touched.delete(keyId);
    });
  }
}
