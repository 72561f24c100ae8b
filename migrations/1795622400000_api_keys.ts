import type { MigrationBuilder } from 'node-pg-migrate';

/*
 * API keys for /v1 (README "Keys"): only a SHA-256 of each key is kept, with its scope,
 * its site (null: every site, admin keys only), a name and when it was made, last used
 * and revoked. Rate limits are token buckets per key, shared by every instance.
 */
export function up(pgm: MigrationBuilder): void {
  pgm.sql(`
    create table headcount_api_keys (
      id text primary key,
      key_sha256 bytea not null unique,
      scope text not null check (scope in ('ingest', 'read', 'admin')),
      site text check (site ~ '^[a-z0-9][a-z0-9._-]{0,127}$'),
      name text not null default '' check (char_length(name) <= 200),
      created_at timestamptz not null default now(),
      last_used_at timestamptz,
      revoked_at timestamptz,
      check ((site is null) = (scope = 'admin'))
    );
    comment on table headcount_api_keys is 'headcount: /v1 API keys (npm run keys); the keys themselves are never stored, only their SHA-256';

    -- Unlogged: a crash forgets the buckets (every key starts full again), which costs
    -- nothing that matters, and no request waits for their WAL.
    create unlogged table headcount_rate_limits (
      key_id text primary key,
      tokens double precision not null,
      updated_at timestamptz not null,
      -- Whether the last request got a token.
      allowed boolean not null
    );
    comment on table headcount_rate_limits is 'headcount: token buckets of the /v1 rate limits, one per key';
  `);
}

export function down(pgm: MigrationBuilder): void {
  pgm.sql(`
    drop table headcount_rate_limits;
    drop table headcount_api_keys;
  `);
}
