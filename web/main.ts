import 'uplot/dist/uPlot.min.css';
import './style.css';
import { fetchStats, forgetKey, StatsError, type StatsResponse, type StatsRow, storeKey } from './api.js';
import { SITE_PATTERN } from '../src/site.js';
import { SeriesChart } from './chart.js';
import { addDays, browserTimeZone, localDate, type Range, type RangeKey, rangeOf, timeZones } from './time.js';

const RANGE_KEYS: readonly RangeKey[] = ['24h', '7d', '30d', '12m', 'custom'];
const DATE = /^\d{4}-\d{2}-\d{2}$/;

const byId = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el as T;
};

/** A breakdown's section (from the page's template), appended to #breakdowns; its table. */
function breakdown(id: string, title: string, column: string): HTMLTableElement {
  const section = byId<HTMLTemplateElement>('breakdown').content.firstElementChild!.cloneNode(true) as HTMLElement;
  const heading = section.querySelector('h2')!;
  heading.id = `${id}-title`;
  heading.textContent = title;
  section.setAttribute('aria-labelledby', heading.id);
  const table = section.querySelector('table')!;
  table.id = id;
  table.querySelector('thead th')!.textContent = column;
  byId('breakdowns').append(section);
  return table;
}

const ui = {
  site: byId<HTMLInputElement>('site'),
  range: byId<HTMLSelectElement>('range'),
  custom: byId<HTMLFieldSetElement>('custom'),
  from: byId<HTMLInputElement>('from'),
  to: byId<HTMLInputElement>('to'),
  tz: byId<HTMLSelectElement>('tz'),
  main: byId('main'),
  status: byId('status'),
  error: byId('error'),
  results: byId('results'),
  rangeNote: byId('range-note'),
  empty: byId('empty'),
  totalUsers: byId('total-users'),
  usersNote: byId('users-note'),
  totalEvents: byId('total-events'),
  series: byId<HTMLTableElement>('series'),
  kinds: breakdown('kinds', 'By kind', 'Kind'),
  pages: breakdown('pages', 'Top pages', 'Page'),
  updated: byId('updated'),
};

const charts = {
  users: new SeriesChart(byId('chart-users'), 'Distinct users', '#2563eb'),
  events: new SeriesChart(byId('chart-events'), 'Events', '#15803d'),
};

const number = new Intl.NumberFormat();
const query = new URLSearchParams(location.search);
/** Seconds between two reads while the range holds the present (`?poll=` to change). */
const pollSeconds = Math.max(1, Number(query.get('poll')) || 10);

let generation = 0;
let inFlight: AbortController | undefined;
let timer: ReturnType<typeof setTimeout> | undefined;

/** The controls, from the page's URL (what a bookmark keeps) or the defaults. */
function initControls(): void {
  const zones = timeZones();
  const own = browserTimeZone();
  if (!zones.includes(own)) zones.unshift(own);
  const tz = query.get('tz') ?? own;
  if (!zones.includes(tz)) zones.unshift(tz);
  ui.tz.replaceChildren(...zones.map((z) => new Option(z === own ? `${z} (this browser)` : z, z)));
  ui.tz.value = tz;

  const site = query.get('site') ?? '';
  ui.site.value = SITE_PATTERN.test(site) ? site : '';
  const range = query.get('range') as RangeKey | null;
  ui.range.value = range && RANGE_KEYS.includes(range) ? range : '30d';
  const today = localDate(Date.now(), tz);
  const from = query.get('from') ?? '';
  const to = query.get('to') ?? '';
  ui.from.value = DATE.test(from) ? from : addDays(today, -6);
  ui.to.value = DATE.test(to) ? to : today;
  ui.custom.hidden = ui.range.value !== 'custom';
}

/** Keeps the choice in the URL (never anything secret: a key will not go there). */
function saveChoice(): void {
  const q = new URLSearchParams();
  if (ui.site.value) q.set('site', ui.site.value);
  q.set('range', ui.range.value);
  q.set('tz', ui.tz.value);
  if (ui.range.value === 'custom') {
    q.set('from', ui.from.value);
    q.set('to', ui.to.value);
  }
  if (query.has('poll')) q.set('poll', String(pollSeconds));
  history.replaceState(null, '', `?${q.toString()}`);
}

function currentRange(): Range {
  return rangeOf(
    { key: ui.range.value as RangeKey, timeZone: ui.tz.value, customFrom: ui.from.value, customTo: ui.to.value },
    Date.now(),
  );
}

/**
 * Reads everything the page shows: the series, the range's total (granularity=total: a
 * union, never the sum of the buckets) and the two breakdowns. A newer read supersedes
 * an older one; a poll shows no loading state.
 */
async function load(reason: 'change' | 'poll'): Promise<void> {
  clearTimeout(timer);
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  const mine = ++generation;
  const range = currentRange();
  const base = { site: ui.site.value || undefined, from: range.from, to: range.to, timezone: range.timeZone };
  if (reason === 'change') {
    ui.main.setAttribute('aria-busy', 'true');
    ui.status.textContent = 'Loading…';
  }
  let retry = range.live;
  try {
    const [series, total, kinds, pages] = await Promise.all([
      fetchStats({ ...base, granularity: range.granularity }, controller.signal),
      fetchStats({ ...base, granularity: 'total' }, controller.signal),
      fetchStats({ ...base, granularity: 'total', group_by: 'kind', limit: 10 }, controller.signal),
      fetchStats({ ...base, granularity: 'total', group_by: 'page', limit: 10 }, controller.signal),
    ]);
    if (mine !== generation) return;
    show(range, series, total, kinds, pages);
  } catch (err) {
    if (mine !== generation || controller.signal.aborted) return;
    retry = showError(err);
  } finally {
    if (mine === generation) {
      ui.main.setAttribute('aria-busy', 'false');
      if (retry) timer = setTimeout(() => void load('poll'), pollSeconds * 1000);
    }
  }
}

function show(range: Range, series: StatsResponse, total: StatsResponse, kinds: StatsResponse, pages: StatsResponse): void {
  const sum = total.data[0] ?? { users: 0, events: 0 };
  const site = total.meta.site;
  ui.site.placeholder = site;
  ui.error.hidden = true;
  ui.results.hidden = false;
  ui.status.textContent = `Site ${site}, ${describe(range)}, ${range.timeZone}`;

  ui.rangeNote.hidden = !range.note;
  ui.rangeNote.textContent = range.note ?? '';
  ui.empty.hidden = sum.events > 0;
  ui.empty.textContent = `No events for site ${site} in this range yet.`;

  ui.totalUsers.textContent = number.format(sum.users);
  ui.totalEvents.textContent = number.format(sum.events);
  const error = (total.meta.relative_standard_error * 100).toFixed(2);
  ui.usersNote.textContent = total.meta.approximate
    ? `Each user counted once over the whole range. An hll estimate: within ±${error} % (one standard error) of the true count.`
    : `Each user counted once over the whole range. Exact: sets this small are counted one by one (beyond that, hll estimates within ±${error} %).`;

  const unit = range.granularity === 'hour' ? 'hour' : 'day';
  for (const el of document.querySelectorAll('.unit')) el.textContent = unit;
  for (const el of document.querySelectorAll('.unit-cap')) el.textContent = unit === 'hour' ? 'Hour' : 'Day';
  const xs = series.data.map((r) => Date.parse(r.bucket) / 1000);
  charts.users.render(
    xs,
    series.data.map((r) => r.users),
    range.timeZone,
    range.granularity,
  );
  charts.events.render(
    xs,
    series.data.map((r) => r.events),
    range.timeZone,
    range.granularity,
  );
  fillTable(
    ui.series,
    series.data,
    (r) => label(r.bucket, range),
    (tr, r) => (tr.dataset.bucket = r.bucket),
  );
  fillTable(ui.kinds, kinds.data, (r) => (r.kind as string | null) ?? '');
  fillTable(ui.pages, pages.data, (r) => (r.page as string | null) || '(no page)');
  ui.updated.textContent = `Updated ${new Date().toLocaleTimeString(undefined, { timeZone: range.timeZone, timeZoneName: 'short' })}${range.live ? `; live, every ${pollSeconds} s` : ''}.`;
}

/** A bucket's local start, as /v1/stats labels it (`2026-11-23T05:00:00+05:30`). */
const label = (bucket: string, range: Range): string =>
  range.granularity === 'hour' ? bucket.slice(0, 16).replace('T', ' ') : bucket.slice(0, 10);

function describe(range: Range): string {
  if (range.granularity === 'hour' && ui.range.value === '24h') return 'the last 24 hours';
  const last = addDays(range.to, -1);
  return range.from === last ? range.from : `${range.from} to ${last}`;
}

function fillTable(
  table: HTMLTableElement,
  rows: StatsRow[],
  name: (r: StatsRow) => string,
  decorate?: (tr: HTMLTableRowElement, r: StatsRow) => void,
): void {
  const body = table.tBodies[0]!;
  if (rows.length === 0) {
    const tr = document.createElement('tr');
    const td = tr.insertCell();
    td.colSpan = 3;
    td.textContent = 'None in this range.';
    body.replaceChildren(tr);
    return;
  }
  body.replaceChildren(
    ...rows.map((r) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = name(r);
      tr.append(th);
      tr.insertCell().textContent = number.format(r.users);
      tr.insertCell().textContent = number.format(r.events);
      decorate?.(tr, r);
      return tr;
    }),
  );
}

/** Shows why there are no numbers instead of an empty chart; true when worth retrying. */
function showError(err: unknown): boolean {
  const e = err instanceof StatsError ? err : new StatsError(String(err), 0);
  ui.results.hidden = true;
  ui.error.hidden = false;
  ui.status.textContent = '';
  const retrying = e.status === 0 || e.status >= 500;
  const heading =
    e.code === 'database_unavailable'
      ? 'The database is not answering, so there are no numbers to show.'
      : e.status === 0
        ? 'headcount is not answering.'
        : e.status >= 500
          ? 'headcount could not answer.'
          : 'headcount refused the request.';
  const h = document.createElement('strong');
  h.textContent = heading;
  const detail = document.createElement('p');
  detail.textContent = `${e.status ? `${e.status}: ` : ''}${e.message}${retrying ? ` — trying again every ${pollSeconds} s.` : ''}`;
  ui.error.replaceChildren(h, detail);
  // No key, or one that may not read this site: ask for a read key, once; it is kept in
  // the browser's storage (never in the URL) for the next visits.
  if (e.status === 401 || (e.status === 403 && e.code === 'forbidden')) {
    if (e.status === 401) forgetKey();
    ui.error.append(keyForm());
  }
  return retrying;
}

function keyForm(): HTMLFormElement {
  const form = document.createElement('form');
  form.id = 'key-form';
  const label = document.createElement('label');
  label.textContent = 'Read key (npm run keys -- create --scope read --site …)';
  const input = document.createElement('input');
  input.type = 'password';
  input.name = 'key';
  input.autocomplete = 'off';
  input.required = true;
  input.pattern = 'hck_[A-Za-z0-9_\\-]{43}';
  label.append(input);
  const button = document.createElement('button');
  button.type = 'submit';
  button.textContent = 'Use this key';
  form.append(label, button);
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    storeKey(input.value.trim());
    void load('change');
  });
  setTimeout(() => input.focus(), 0);
  return form;
}

initControls();
saveChoice();
const changed = (): void => {
  ui.custom.hidden = ui.range.value !== 'custom';
  if (ui.site.value && !ui.site.checkValidity()) return;
  saveChoice();
  void load('change');
};
ui.range.addEventListener('change', changed);
ui.tz.addEventListener('change', changed);
ui.site.addEventListener('change', changed);
ui.from.addEventListener('change', () => DATE.test(ui.from.value) && changed());
ui.to.addEventListener('change', () => DATE.test(ui.to.value) && changed());
byId('controls').addEventListener('submit', (e) => {
  e.preventDefault();
  changed();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && (currentRange().live || !ui.error.hidden)) void load('poll');
  else if (document.visibilityState === 'hidden') clearTimeout(timer);
});
void load('change');
