import { createHmac } from 'node:crypto';

/**
 * The visitor id of an event sent without `user`: HMAC-SHA256 keyed with the day's salt
 * over the site, the client address and the user agent (NUL-separated: none of them can
 * hold NUL), as base64url of its first 16 bytes (22 characters). Nothing of the address
 * or the user agent can be read back from it, and without the salt it cannot be
 * recomputed for a guessed address.
 */
export function visitorId(salt: Buffer, site: string, address: string, userAgent: string): string {
  return createHmac('sha256', salt).update(`${site}\0${address}\0${userAgent}`).digest().subarray(0, 16).toString('base64url');
}
