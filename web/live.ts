import { fetchStats, type StatsParams, StatsError } from './api.js';

const number = new Intl.NumberFormat();

/**
 * The "current visitors" figure: distinct users with an event in the last 5 minutes
 * (`period=5m`, the five minute buckets up to and including the current one), re-read
 * every `intervalMs` while the page is visible. One read at a time: the next is set
 * only when the previous has answered, never sooner than its Retry-After, so a slow or
 * busy service gets no pile of requests; a hidden page asks nothing.
 */
export class CurrentVisitors {
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** Bumped by every (re)start: an answer to an older read is not shown. */
  private generation = 0;

  constructor(
    private readonly el: HTMLElement,
    private readonly note: HTMLElement,
    /** Site, time zone and filters: what the rest of the page shows. */
    private readonly params: () => StatsParams,
    private readonly intervalMs: number,
  ) {
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') this.restart();
      else this.stop();
    });
  }

  /** Reads now (the site or the filters changed, or the page came back into view), then every interval. */
  restart(): void {
    this.stop();
    if (document.visibilityState === 'visible') void this.read(this.generation);
  }

  private stop(): void {
    clearTimeout(this.timer);
    this.generation++;
  }

  private async read(mine: number): Promise<void> {
    let waitMs: number | undefined = this.intervalMs;
    try {
      const res = await fetchStats({ ...this.params(), period: '5m', metrics: 'users' });
      if (mine !== this.generation) return;
      const users = res.data[0]?.users ?? 0;
      this.el.textContent = number.format(users);
      this.el.dataset.users = String(users);
      this.note.textContent = `Distinct users with an event in the last 5 minutes; updated every ${Math.round(this.intervalMs / 1000)} s.`;
    } catch (err) {
      if (mine !== this.generation) return;
      const e = err instanceof StatsError ? err : new StatsError(String(err), 0);
      this.el.textContent = '—';
      delete this.el.dataset.users;
      if (e.status === 401 || e.status === 403) {
        // No key, or not one for this site: the page asks for one and restarts this with it.
        waitMs = undefined;
        this.note.textContent = `Not known: ${e.message}.`;
        return;
      }
      if (e.retryAfterMs !== undefined) waitMs = Math.max(waitMs, e.retryAfterMs);
      this.note.textContent = `Not known now (${e.message}); trying again in ${Math.round(waitMs / 1000)} s.`;
    } finally {
      if (waitMs !== undefined && mine === this.generation && document.visibilityState === 'visible')
        this.timer = setTimeout(() => void this.read(mine), waitMs);
    }
  }
}
