import { isIP } from 'node:net';

/**
 * TRUST_PROXY: which peers may say who the client is in X-Forwarded-For. Unset: none,
 * the socket's address is the client's. A list of addresses: a request whose socket peer
 * is one of them is read from X-Forwarded-For, right to left, skipping the trusted
 * proxies, and the first address that is not one is the client (so a client cannot
 * forge it by sending its own header: what it sent is left of what the proxies added).
 * Our own parsing rather than Koa's `app.proxy`, which trusts the header from any peer
 * and takes a count of hops (maxIpsCount) rather than the proxies' addresses.
 */
export function parseTrustProxy(text: string | undefined): ReadonlySet<string> {
  const proxies = new Set<string>();
  for (const item of (text ?? '').split(',')) {
    const address = item.trim();
    if (address === '') continue;
    if (isIP(address) === 0) throw new Error(`not an IP address: ${JSON.stringify(address)}`);
    proxies.add(normalize(address));
  }
  return proxies;
}

/** IPv4 mapped into IPv6 (::ffff:1.2.3.4, as a dual-stack socket reports it) as IPv4; lowercase. */
function normalize(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

/** The client's address of a request from `peer` that carried `forwardedFor` (X-Forwarded-For). */
export function clientAddress(peer: string, forwardedFor: string | undefined, trusted: ReadonlySet<string>): string {
  let client = normalize(peer);
  if (!trusted.has(client) || !forwardedFor) return client;
  const hops = forwardedFor.split(',');
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = normalize(hops[i]!.trim());
    if (isIP(hop) === 0) return client;
    client = hop;
    if (!trusted.has(hop)) return hop;
  }
  return client;
}
