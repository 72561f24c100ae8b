/**
 * The numbered migrations of each release, with the SHA-256 of every file as it shipped
 * (v0.2.0: every file in migrations/ as of commit 60b1ed1; main: those merged since). A shipped migration is never
 * edited: a database migrated by that release would never run the edit. Add a new
 * migration instead.
 */
export const RELEASES = {
  'v0.1.0': { '1763870400000_storage': 'eab510fb1e66d682189aaa818398cf9d465c6f794e01ed7d6d625cd9d8757366' },
  'v0.2.0': {
    '1763870400000_storage': 'eab510fb1e66d682189aaa818398cf9d465c6f794e01ed7d6d625cd9d8757366',
    '1795449600000_sites_and_fresh_reads': '4a89f52e4afda71ff830d9caa06f0049bbe546d3c68d2672ea7f24ad1d74d4cc',
    '1795536000000_stats_function': 'dd820b529ad62ded659b1c07b7f19cb3429e144506617db3bd56a8beed124496',
    '1795622400000_api_keys': '1fdab26da07d86434ce6aab19fde27443250239a5c709f9b0f0b84ef0f08d8af',
    '1795708800000_rate_limit_leases': '92e7215a37742eb968b5eeec14b94c9215658e89f8a5e32944bf51bb94bdeda8',
    '1795795200000_stats_without_jit': 'b343ec9f4fb76b5c93ebed1eecab0cf6710e440a25216c8db18a1fb504e30bae',
    '1795881600000_utc_days': 'a68c94704a56b08cab3724713d4096a1d41f6d75492a160344206848cbf99b5d',
  },
  // On main, not yet in a release: pinned all the same, as databases built from main ran them.
  main: {
    '1796054400000_sql_objects': '3c137d78b8f4be2db45e89f8d4c39561a808917ae9fdec8dcd9444dde8fb6b8c',
    '1796140800000_dimensions': '8ad2e69780b3a93cf2a78d1ec6eea56b94687c6abfe26ff2b708499a0152edf7',
    '1796160000000_pending_anonymous_events': 'e504acb6bd5d9b21c9725a08a5f3041df4cc80349e02a965bd08867f4cf353f4',
    '1796227200000_tracker_salts': '5c9c12789068e9ce75736854f15de444f7de25def9d6e1122ec192a419ffd988',
    '1796400000000_visits': '09358b22ae1ef750f2eea5b394e5f8aa087bebe5db53a99f95e427bcb158af1f',
    '1796486400000_source': 'd61547351e2e3b5e7260544c4ef4bdc2b7b2710ea0a86f4e65ed401b3ceb633b',
    '1796572800000_quarter_hours': '9749f104b924a41d8b1f51d8a260ae3ddcfbd06ee83d18420d2da8d4ef64c080',
    '1796659200000_every_kind_rows': '2b849a89916695d7795b5759ec773ba81d348b5ac5bf294f3591ce353a09a6bf',
    '1796745600000_rollup_parts': '42724872e82f03b934fc2554530c821d1fcb8838cd1967cfa16605cfc8089001',
    '1796752800000_rollup_weeks': '71b89c5173b3c935ad7110de80645c7d210f3d58fe3d87b175464da82f45b9dd',
    // Storage mode citus (issue 21): distributes postgres mode's schema where asked.
    '1796832000000_citus': '512c795407e56303af2178f54d806b175d588bd079a563036125629f809843b6',
    // Citus: replica identities for headcount_pending and headcount_visits (force_logical rebalances).
    '1796918400000_replica_identities': 'd03ec7119649580de73cba784da9e3dda5b3e6c26eef3f9e318951d62eaf7ed5',
    // Citus: staging tables for the visits of a batch over many sites.
    '1797004800000_visit_staging': '9600a8056dd6bfd15b42e492f841a649a9726e24549777a07166017360b53270',
    // Citus: the visit staging units keep the tids of the stored visits they hold.
    '1797091200000_visit_unit_tids': '0190f9f1190e8fb5ddb10341f0b3b9325c22452999e282dda3283a1f31b96054',
    // Parts for what every insert keeps: <name>_parts tables under views of the documented names.
    '1797177600000_event_parts': '4576e9e819fdd85eddcaec8a6534b9ded1112bd221c3d2eaeb8ca8da652393a5',
    // Citus: a lock row per visitor on its worker, which a prepared transaction keeps.
    '1797264000000_visit_locks': 'ca399ac0b6ad384ab6ca80415d73eb53f93df1e5111577b1dc3b3cd1bf62a000',
    '1797350400000_events_site_time': '711fbd5d543f05ac3b777a32223e08f2290a70682a433d64ccedbce5cc9f4699',
  },
} as const;

export type Release = keyof typeof RELEASES;

/** The migrations of `release`, in order. */
export const migrationsOf = (release: Release): string[] => Object.keys(RELEASES[release]);
