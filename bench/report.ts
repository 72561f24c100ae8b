import { writeFileSync } from 'node:fs';
import { Resvg } from '@resvg/resvg-js';

/** One system under closed-loop wrk load: medians of its rounds. */
export interface ThroughputRow {
  scenario: string;
  connections: number;
  requestsPerSec: number;
  /** req/s as a ratio to Koa alone, and to seed 000's architecture. */
  ratio: number;
  ratioSeed: number;
  p50Ms: number;
  p99Ms: number;
  /** From the service's /metrics histogram (headcount rows only). */
  serverP99Ms: number;
  /** µs of CPU per request: the whole machine less wrk; and as ratios to Koa and the seed. */
  cpuUs: number;
  cpuRatioKoa: number;
  cpuRatioSeed: number;
  /** µs per request of the service process tree plus its store (PostgreSQL / Redis), and its ratio to the seed's. */
  stackUs: number;
  stackRatioSeed: number;
  serviceUs: number;
  storeUs: number;
  wrkUs: number;
  otherUs: number;
  /** Busy share of one core during the run. */
  serviceCores: number;
  storeCores: number;
  wrkCores: number;
  machineCores: number;
  runs: number;
  errors: number;
}

export interface LatencyRow {
  scenario: string;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  failures: number;
}

const pad = (s: string, n: number): string => (s.length >= n ? s : s + ' '.repeat(n - s.length));
/** A figure as the tables print it: thousands separated, `digits` decimals, '-' for NaN. */
export const fmt = (v: number, digits = 0): string =>
  Number.isFinite(v) ? v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '-';

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => `| ${cells.map((c, i) => pad(c, widths[i]!)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

export function costTable(rows: ThroughputRow[]): string {
  return table(
    [
      'scenario',
      'conns',
      'req/s',
      'x Koa',
      'x seed',
      'p50 ms',
      'p99 ms',
      'server p99',
      'CPU µs/req',
      'CPU x Koa',
      'CPU x seed',
      'stack µs',
      'stack x seed',
      'service µs',
      'store µs',
      'wrk µs',
      'other µs',
      'cores svc/store/wrk/machine',
      'errors',
    ],
    rows.map((r) => [
      r.scenario,
      String(r.connections),
      fmt(r.requestsPerSec),
      fmt(r.ratio, 2),
      fmt(r.ratioSeed, 2),
      fmt(r.p50Ms, 2),
      fmt(r.p99Ms, 2),
      fmt(r.serverP99Ms, 2),
      fmt(r.cpuUs, 1),
      fmt(r.cpuRatioKoa, 2),
      fmt(r.cpuRatioSeed, 2),
      fmt(r.stackUs, 1),
      fmt(r.stackRatioSeed, 2),
      fmt(r.serviceUs, 1),
      fmt(r.storeUs, 1),
      fmt(r.wrkUs, 1),
      fmt(r.otherUs, 1),
      [r.serviceCores, r.storeCores, r.wrkCores, r.machineCores].map((v) => fmt(v, 2)).join(' / '),
      String(r.errors),
    ]),
  );
}

export function latencyTable(rows: LatencyRow[]): string {
  return table(
    ['query', 'requests', 'p50 ms', 'p99 ms', 'max ms', 'failures'],
    rows.map((r) => [r.scenario, fmt(r.requests), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2), fmt(r.maxMs, 1), String(r.failures)]),
  );
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** Horizontal bars, one group per label; values of each series side by side. */
function bars(opts: {
  x: number;
  y: number;
  width: number;
  title: string;
  unit: string;
  labels: string[];
  series: { name: string; color: string; values: number[] }[];
}): { svg: string; height: number } {
  const rowH = 14 * opts.series.length + 10;
  const labelW = 360;
  const max = Math.max(1e-9, ...opts.series.flatMap((s) => s.values.filter(Number.isFinite)));
  const plotW = opts.width - labelW - 90;
  let svg = `<text x="${opts.x}" y="${opts.y + 16}" font-size="16" font-weight="bold">${esc(opts.title)}</text>`;
  opts.series.forEach((s, i) => {
    svg += `<rect x="${opts.x + labelW + i * 130}" y="${opts.y + 6}" width="12" height="12" fill="${s.color}"/><text x="${opts.x + labelW + i * 130 + 16}" y="${opts.y + 16}" font-size="12">${esc(s.name)}</text>`;
  });
  opts.labels.forEach((label, li) => {
    const top = opts.y + 30 + li * rowH;
    svg += `<text x="${opts.x}" y="${top + rowH / 2 + 2}" font-size="12">${esc(label)}</text>`;
    opts.series.forEach((s, si) => {
      const v = s.values[li] ?? NaN;
      const w = Number.isFinite(v) ? Math.max(1, (v / max) * plotW) : 0;
      svg += `<rect x="${opts.x + labelW}" y="${top + si * 14}" width="${w}" height="12" fill="${s.color}"/>`;
      svg += `<text x="${opts.x + labelW + w + 4}" y="${top + si * 14 + 10}" font-size="11">${Number.isFinite(v) ? fmt(v, v < 10 ? 2 : 0) : '-'} ${opts.unit}</text>`;
    });
  });
  return { svg, height: 40 + opts.labels.length * rowH };
}

/** Throughput and latency percentiles per scenario, as a PNG. */
export function chart(file: string, title: string, throughput: ThroughputRow[], latencies: LatencyRow[]): void {
  const width = 1000;
  const a = bars({
    x: 20,
    y: 50,
    width,
    title: 'Throughput (median req/s)',
    unit: 'req/s',
    labels: throughput.map((r) => `${r.scenario} c${r.connections}`),
    series: [{ name: 'req/s', color: '#3b73b9', values: throughput.map((r) => r.requestsPerSec) }],
  });
  const latencyLabels = [...throughput.map((r) => `${r.scenario} c${r.connections}`), ...latencies.map((r) => r.scenario)];
  const b = bars({
    x: 20,
    y: 50 + a.height + 20,
    width,
    title: 'Latency (ms)',
    unit: 'ms',
    labels: latencyLabels,
    series: [
      { name: 'p50', color: '#7fb069', values: [...throughput.map((r) => r.p50Ms), ...latencies.map((r) => r.p50Ms)] },
      { name: 'p99', color: '#e4572e', values: [...throughput.map((r) => r.p99Ms), ...latencies.map((r) => r.p99Ms)] },
    ],
  });
  const height = 50 + a.height + 20 + b.height + 20;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="20" y="30" font-size="20" font-weight="bold">${esc(title)}</text>
${a.svg}${b.svg}</svg>`;
  const png = new Resvg(svg, { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  writeFileSync(file, png);
}
