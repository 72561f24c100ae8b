import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import Bowser from 'bowser';
import { isbot } from 'isbot';
import { Reader } from 'maxmind';
import type { EventDimensions } from '../dimensions.js';
import { AGENT_MAX_CHARS } from '../v1/events/dimensions.js';

/*
 * What the service adds to an event of the tracker (sent without `user`) from its request:
 * country from the client address (an offline database: @ip-location-db/geo-whois-asn-
 * country-mmdb, data CC BY 4.0 by the NRO, read with maxmind; the package's data is what
 * updates it), browser and OS from the user agent (bowser, MIT), device class from the
 * screen width the script sends, else from the user agent. A field the client sent wins.
 * Only the derived labels are stored, never the address or the user agent.
 */

/** What the tracker's screen width says of the device (Plausible's limits: phones, tablets, the rest). */
export function deviceOfWidth(width: number): 'mobile' | 'tablet' | 'desktop' {
  return width < 576 ? 'mobile' : width < 992 ? 'tablet' : 'desktop';
}

const DEVICE_TYPES = new Set(['mobile', 'tablet', 'desktop']);

/** Browser, OS and device class of a user agent (each undefined when unknown). */
export function agentOf(userAgent: string): { browser?: string; os?: string; device?: string } {
  if (userAgent === '') return {};
  const parsed = Bowser.parse(userAgent);
  const label = (text: string | undefined): string | undefined =>
    text === undefined || text === '' ? undefined : text.slice(0, AGENT_MAX_CHARS);
  const type = parsed.platform.type;
  return {
    browser: label(parsed.browser.name),
    os: label(parsed.os.name),
    device: type !== undefined && DEVICE_TYPES.has(type) ? type : undefined,
  };
}

/** Crawlers, bots, headless browsers and HTTP libraries (isbot's list). */
export const isBot = (userAgent: string): boolean => isbot(userAgent);

const require = createRequire(import.meta.url);
/** A record of geo-whois-asn-country (not one of MaxMind's own shapes, which maxmind's types list). */
interface CountryRecord {
  country_code?: string;
}
let countries: { get(address: string): CountryRecord | null } | undefined;

/** The country (ISO 3166-1 alpha-2) of an address, or undefined (private, reserved or unknown). */
export function countryOf(address: string): string | undefined {
  countries ??= new Reader(
    readFileSync(require.resolve('@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb')),
  ) as unknown as { get(address: string): CountryRecord | null };
  try {
    return countries.get(address)?.country_code?.toUpperCase();
  } catch {
    return undefined; // not an address maxmind reads
  }
}

export interface RequestFacts {
  address: string;
  userAgent: string;
  /** TRACKER_COUNTRY: look the country up, or not. */
  country: boolean;
}

/** The dimensions of a tracker's event with what its request says added where the event had nothing. */
export function enrich(
  dims: EventDimensions | undefined,
  screenWidth: number | undefined,
  agent: ReturnType<typeof agentOf>,
  facts: RequestFacts,
): EventDimensions | undefined {
  const out: EventDimensions = { ...dims };
  out.browser ??= agent.browser;
  out.os ??= agent.os;
  out.device ??= screenWidth !== undefined ? deviceOfWidth(screenWidth) : agent.device;
  if (facts.country) out.country ??= countryOf(facts.address);
  for (const key of Object.keys(out) as (keyof EventDimensions)[]) if (out[key] === undefined) delete out[key];
  return Object.keys(out).length === 0 ? undefined : out;
}
