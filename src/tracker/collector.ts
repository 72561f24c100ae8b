import type { IncomingMessage } from 'node:http';
import { LRUCache } from 'lru-cache';
import type { Sql } from '../db/client.js';
import type { EventDimensions } from '../dimensions.js';
import { clientAddress } from './address.js';
import { agentOf, enrich, isBot } from './enrich.js';
import { DailySalts } from './salts.js';
import type { TrackerSettings } from './settings.js';
import { visitorId } from './visitor.js';

/** What the collector reads of one request, once, for all its events sent without `user`. */
export interface Visit {
  address: string;
  userAgent: string;
  bot: boolean;
  agent: ReturnType<typeof agentOf>;
}

/**
 * The collector side of the tracker, for POST /v1/events: an event sent without `user`
 * (the tracker's) gets a visitor id derived from the request (see visitorId) and the
 * dimensions its request tells (see enrich); one from a bot is dropped and counted.
 * Events sent with a `user` are stored as sent.
 */
export class Collector {
  readonly salts: DailySalts;
  /**
   * What a user agent says (bot, browser, os, device), by user agent: the same few
   * hundred strings make most of a site's traffic, and parsing one costs ~10 µs
   * (npm run bench:tracker). In memory only, never stored.
   */
  private readonly agents = new LRUCache<string, { bot: boolean; agent: ReturnType<typeof agentOf> }>({ max: 2000 });

  constructor(
    sql: Sql,
    private readonly settings: TrackerSettings,
    private readonly onBots: (events: number) => void,
    now?: () => number,
  ) {
    this.salts = new DailySalts(sql, now);
  }

  /** The client's address and user agent, and what the user agent says. */
  visit(req: IncomingMessage): Visit {
    const forwarded = req.headers['x-forwarded-for'];
    const address = clientAddress(
      req.socket.remoteAddress ?? '',
      (Array.isArray(forwarded) ? forwarded.join(', ') : forwarded) || undefined,
      this.settings.trustProxy,
    );
    const userAgent = req.headers['user-agent'] ?? '';
    let known = this.agents.get(userAgent);
    if (!known) {
      const bot = isBot(userAgent);
      known = { bot, agent: bot ? {} : agentOf(userAgent) };
      this.agents.set(userAgent, known);
    }
    return { address, userAgent, ...known };
  }

  botsDropped(events: number): void {
    if (events > 0) this.onBots(events);
  }

  /** The visitor id of `visit` on `site` today (UTC): the salt of the day the event is received. */
  async visitorId(site: string, visit: Visit): Promise<string> {
    return visitorId(await this.salts.current(), site, visit.address, visit.userAgent);
  }

  dimensions(dims: EventDimensions | undefined, screenWidth: number | undefined, visit: Visit): EventDimensions | undefined {
    return enrich(dims, screenWidth, visit.agent, { address: visit.address, userAgent: visit.userAgent, country: this.settings.country });
  }
}
