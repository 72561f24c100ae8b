import { parseTrustProxy } from './address.js';

export { parseTrustProxy };

/** TRACKER_SCRIPT_PATH, TRUST_PROXY and TRACKER_COUNTRY (src/config.ts). */
export interface TrackerSettings {
  /** The script's second path (GET /script.js is always served). */
  readonly scriptPath: string | undefined;
  /** Proxies whose X-Forwarded-For names the client (empty: the socket's peer is the client). */
  readonly trustProxy: ReadonlySet<string>;
  /** Look the country of a tracker's event up from its client address. */
  readonly country: boolean;
}

export const DEFAULT_TRACKER: TrackerSettings = { scriptPath: undefined, trustProxy: new Set(), country: true };
