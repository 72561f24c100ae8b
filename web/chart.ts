import uPlot from 'uplot';
import type { Granularity } from './time.js';

const HEIGHT = 220;
const HOUR = 3600;
const DAY = 24 * HOUR;
const HOUR_INCRS = [HOUR, 2 * HOUR, 3 * HOUR, 4 * HOUR, 6 * HOUR, 12 * HOUR, DAY];
const DAY_INCRS = [DAY, 2 * DAY, 7 * DAY, 14 * DAY, 28 * DAY, 30 * DAY, 91 * DAY, 365 * DAY];

/**
 * One time series (bucket start -> count) drawn with uPlot in a time zone. The chart's
 * element carries `data-points` (how many buckets it draws); the page's data table is its
 * text alternative.
 */
export class SeriesChart {
  private plot: uPlot | undefined;
  private shape = '';
  private readonly resize = new ResizeObserver(() => this.plot?.setSize(this.size()));

  constructor(
    private readonly el: HTMLElement,
    private readonly label: string,
    private readonly color: string,
  ) {
    this.resize.observe(el);
  }

  /** `xs`: bucket starts in epoch seconds. */
  render(xs: number[], ys: number[], timeZone: string, granularity: Granularity): void {
    const shape = `${timeZone}|${granularity}`;
    if (!this.plot || shape !== this.shape) {
      this.plot?.destroy();
      this.shape = shape;
      this.plot = new uPlot(this.options(timeZone, granularity), [xs, ys], this.el);
    } else this.plot.setData([xs, ys]);
    this.el.dataset.points = String(xs.length);
  }

  private size(): { width: number; height: number } {
    return { width: Math.max(200, this.el.clientWidth), height: HEIGHT };
  }

  private options(timeZone: string, granularity: Granularity): uPlot.Options {
    return {
      ...this.size(),
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), timeZone),
      cursor: { drag: { x: false, y: false } },
      legend: { show: true, live: true },
      scales: { y: { range: (_u, _min, max) => [0, max > 0 ? Math.ceil(max * 1.1) : 1] } },
      // Ticks on whole buckets only (local midnights, whole hours), never 8am on a day chart.
      axes: [{ incrs: granularity === 'hour' ? HOUR_INCRS : DAY_INCRS }, { size: 56 }],
      series: [
        {
          label: granularity === 'hour' ? 'Hour' : 'Day',
          value: granularity === 'hour' ? '{YYYY}-{MM}-{DD} {HH}:{mm}' : '{YYYY}-{MM}-{DD}',
        },
        {
          label: this.label,
          stroke: this.color,
          fill: `${this.color}22`,
          width: 2,
          points: { show: true, size: 5 },
          value: (_u, v) => (v == null ? '–' : v.toLocaleString()),
        },
      ],
    };
  }
}
