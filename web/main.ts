import 'uplot/dist/uPlot.min.css';
import './style.css';
import {
  declaredProps,
  fetchStats,
  forgetKey,
  StatsError,
  type StatsParams,
  type StatsResponse,
  type StatsRow,
  storeKey,
  VISIT_METRICS,
  type VisitResponse,
  type VisitRow,
} from './api.js';
import { SITE_PATTERN } from '../src/site.js';
import { SeriesChart } from './chart.js';
import { change, duration, percent, pointChange } from './compare.js';
import { EmbedPanel } from './embed.js';
import { CurrentVisitors } from './live.js';
import {
  describeFilter,
  dimensionLabel,
  type Filter,
  formatFilter,
  MAX_FILTERS,
  parseFilter,
  PROP_NAME,
  rowFilter,
  valueLabel,
  withFilter,
} from './filters.js';
import { addDays, browserTimeZone, localDate, type Range, type RangeKey, rangeOf, timeZones } from './time.js';

const RANGE_KEYS: readonly RangeKey[] = ['24h', '7d', '30d', '12m', 'custom'];
const DATE = /^\d{4}-\d{2}-\d{2}$/;

const byId = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing`);
  return el as T;
};

/** The UTM parameters the campaigns panel can show, one at a time. */
const UTM = ['utm_campaign', 'utm_source', 'utm_medium', 'utm_content', 'utm_term'] as const;

/** A table of users and events per value of one dimension; a row click filters by its value. */
interface Panel {
  table: HTMLTableElement;
  /** The dimension shown now (undefined: none chosen, nothing to ask). */
  dimension: () => string | undefined;
  /** What the table says when there is no dimension to show. */
  unset?: string;
  /** How a value reads in the table (the filter keeps the value itself). */
  label?: (value: string) => string;
  /**
   * A panel of visits (entry and exit pages): its rows show visits and bounce rate, and
   * add no filter, since /v1/stats filters users and events by no visit dimension.
   */
  visits?: true;
}

/** A panel's section (from the page's template), appended to #breakdowns; its table and heading. */
function section(id: string, title: string): { table: HTMLTableElement; heading: HTMLElement } {
  const el = byId<HTMLTemplateElement>('breakdown').content.firstElementChild!.cloneNode(true) as HTMLElement;
  const heading = el.querySelector('h2')!;
  heading.id = `${id}-title`;
  heading.textContent = title;
  el.setAttribute('aria-labelledby', heading.id);
  const table = el.querySelector('table')!;
  table.id = id;
  byId('breakdowns').append(el);
  return { table, heading };
}

function panel(id: string, title: string, dimension: string, label?: (value: string) => string): Panel {
  const { table } = section(id, title);
  table.querySelector('thead th')!.textContent = dimensionLabel(dimension);
  return { table, dimension: () => dimension, ...(label ? { label } : {}) };
}

/** A panel of visits by `dimension` (entry_page, exit_page): visits and bounce rate per page. */
function visitPanel(id: string, title: string, dimension: string, column: string): Panel {
  const { table } = section(id, title);
  const [name, visits, bounce] = table.querySelectorAll('thead th');
  name!.textContent = column;
  visits!.textContent = 'Visits';
  bounce!.textContent = 'Bounce rate';
  return { table, dimension: () => dimension, visits: true };
}

/** A panel whose dimension is chosen with `control` (a select or an input beside its heading). */
function chosenPanel(
  id: string,
  title: string,
  control: HTMLInputElement | HTMLSelectElement,
  controlLabel: string,
  dimension: () => string | undefined,
  unset?: string,
): Panel {
  const { table, heading } = section(id, title);
  const label = document.createElement('label');
  label.className = 'panel-control';
  label.append(controlLabel, control);
  heading.after(label);
  return { table, dimension, ...(unset ? { unset } : {}) };
}

const regionNames = typeof Intl.DisplayNames === 'function' ? new Intl.DisplayNames(undefined, { type: 'region' }) : undefined;
/** "Germany (DE)" for DE; the code itself when the browser does not know it. */
function countryName(code: string): string {
  try {
    const name = regionNames?.of(code);
    return name && name !== code ? `${name} (${code})` : code;
  } catch {
    return code;
  }
}

const utmSelect = document.createElement('select');
utmSelect.id = 'utm';
utmSelect.append(...UTM.map((d) => new Option(dimensionLabel(d), d)));
const propInput = document.createElement('input');
propInput.id = 'prop';
propInput.autocomplete = 'off';
propInput.spellcheck = false;
propInput.placeholder = 'plan';
propInput.pattern = PROP_NAME.source.slice(1, -1);
propInput.title = "A property's name: a lowercase letter, then lowercase letters, digits, '_' or '.'";
/** The site's declared properties (GET /v1/sites/{site}), offered as the field's choices. */
const propChoices = document.createElement('datalist');
propChoices.id = 'prop-choices';
propInput.setAttribute('list', propChoices.id);

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
  usersChange: byId('users-change'),
  eventsChange: byId('events-change'),
  totalVisits: byId('total-visits'),
  visitsChange: byId('visits-change'),
  bounceRate: byId('bounce-rate'),
  bounceChange: byId('bounce-change'),
  visitDuration: byId('visit-duration'),
  durationChange: byId('duration-change'),
  durationNote: byId('duration-note'),
  visitsRefused: byId('visits-refused'),
  series: byId<HTMLTableElement>('series'),
  chips: byId<HTMLUListElement>('chips'),
  filtersHint: byId('filters-hint'),
  clearFilters: byId<HTMLButtonElement>('clear-filters'),
  updated: byId('updated'),
};

/** The panels, in the page's order; each asks /v1/stats for its top 10 values. */
const sources = panel('sources', 'Sources', 'referrer');
const campaigns = chosenPanel('campaigns', 'Campaigns', utmSelect, 'Show', () => utmSelect.value);
const countries = panel('countries', 'Countries', 'country', countryName);
const devices = panel('devices', 'Devices', 'device');
const browsers = panel('browsers', 'Browsers', 'browser');
const oses = panel('oses', 'Operating systems', 'os');
const property = chosenPanel(
  'property',
  'Property',
  propInput,
  'Name',
  () => (propInput.value && propInput.checkValidity() ? `props.${propInput.value}` : undefined),
  'Name a property the events carry (props.<name>) to see its values.',
);
propInput.after(propChoices);
const panels: Panel[] = [
  sources,
  campaigns,
  countries,
  devices,
  browsers,
  oses,
  property,
  panel('kinds', 'By kind', 'kind'),
  panel('pages', 'Top pages', 'page'),
  visitPanel('entry-pages', 'Entry pages', 'entry_page', 'Entry page'),
  visitPanel('exit-pages', 'Exit pages', 'exit_page', 'Exit page'),
];

const charts = {
  users: new SeriesChart(byId('chart-users'), 'Distinct users', '#2563eb'),
  events: new SeriesChart(byId('chart-events'), 'Events', '#15803d'),
};

const number = new Intl.NumberFormat();
const query = new URLSearchParams(location.search);
const embed = new EmbedPanel({
  site: byId('embed-site'),
  tag: byId('embed-tag'),
  key: byId('embed-key'),
  create: byId<HTMLButtonElement>('embed-create'),
  status: byId('embed-status'),
});
/** Seconds between two reads while the range holds the present (`?poll=` to change). */
const pollSeconds = Math.max(1, Number(query.get('poll')) || 10);
/** Seconds between two reads of the current visitors (`?poll=` sets it too). */
const liveSeconds = query.has('poll') ? pollSeconds : 20;

/** The filters every request applies (all must hold), in the order they were added. */
let filters: Filter[] = [];
/** The current visitors: the site, time zone and filters the page shows, over the last 5 minutes. */
const current = new CurrentVisitors(
  byId('current-visitors'),
  byId('current-note'),
  () => ({ site: ui.site.value || undefined, timezone: ui.tz.value, filter: filters.map(formatFilter) }),
  liveSeconds * 1000,
);
let generation = 0;
let inFlight: AbortController | undefined;
/** The parameters of the read the page shows: a panel whose dimension changes is read again with them. */
let shownBase: StatsParams | undefined;
/** Whether a whole read (a change or a poll) is under way. */
let reading = false;
/** Per panel, its latest read of its own. */
const panelReads = new Map<Panel, number>();
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

  filters = query
    .getAll('filter')
    .map(parseFilter)
    .filter((f) => f !== undefined)
    .slice(0, MAX_FILTERS);
  const utm = query.get('utm') ?? '';
  utmSelect.value = (UTM as readonly string[]).includes(utm) ? utm : 'utm_campaign';
  const prop = query.get('prop') ?? '';
  propInput.value = PROP_NAME.test(prop) ? prop : '';
  showFilters();
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
  for (const f of filters) q.append('filter', formatFilter(f));
  if (utmSelect.value !== 'utm_campaign') q.set('utm', utmSelect.value);
  if (propInput.value && propInput.checkValidity()) q.set('prop', propInput.value);
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
 * Reads everything the page shows, every request with the filters: the series, the
 * range's total (granularity=total: a union, never the sum of the buckets) beside the
 * previous period's, and each panel's top values. The requests queue in fetchStats (as
 * many at once as the service runs per key), the series and the total first. A newer
 * read supersedes an older one; a poll shows no loading state.
 */
async function load(reason: 'change' | 'poll'): Promise<void> {
  clearTimeout(timer);
  inFlight?.abort();
  const controller = new AbortController();
  inFlight = controller;
  const mine = ++generation;
  const range = currentRange();
  const base: StatsParams = {
    site: ui.site.value || undefined,
    from: range.from,
    to: range.to,
    timezone: range.timeZone,
    filter: filters.map(formatFilter),
  };
  if (reason === 'change') {
    ui.main.setAttribute('aria-busy', 'true');
    ui.status.textContent = 'Loading…';
  }
  let retry = range.live;
  reading = true;
  if (reason === 'change') current.restart();
  try {
    const [series, total, visits, tables] = await Promise.all([
      fetchStats({ ...base, granularity: range.granularity }, controller.signal),
      withPrevious<StatsResponse>({ ...base, granularity: 'total' }, controller.signal),
      readVisits(base, controller.signal),
      Promise.all(panels.map((p) => readPanel(p, base, controller.signal))),
    ]);
    if (mine !== generation) return;
    shownBase = base;
    show(range, series, total, tables);
    showVisits(visits);
  } catch (err) {
    if (mine !== generation || controller.signal.aborted) return;
    controller.abort(); // drops the requests still queued
    retry = showError(err);
  } finally {
    if (mine === generation) {
      reading = false;
      ui.main.setAttribute('aria-busy', 'false');
      if (retry) timer = setTimeout(() => void load('poll'), pollSeconds * 1000);
    }
  }
}

/**
 * A total with the previous period's (compare=previous_period); without it when the
 * service keeps no sketches that old (a 400 about compare).
 */
async function withPrevious<T extends StatsResponse | VisitResponse>(params: StatsParams, signal: AbortSignal): Promise<T> {
  try {
    return await fetchStats<T>({ ...params, compare: 'previous_period' }, signal);
  } catch (err) {
    if (!(err instanceof StatsError && err.status === 400 && err.parameter === 'compare')) throw err;
    return fetchStats<T>(params, signal);
  }
}

/** The range's visits, bounce rate and visit duration; a refusal (400: a filter on what visits do not start with) says why. */
async function readVisits(base: StatsParams, signal: AbortSignal): Promise<VisitResponse | { message: string }> {
  try {
    return await withPrevious<VisitResponse>({ ...base, granularity: 'total', metrics: VISIT_METRICS }, signal);
  } catch (err) {
    if (err instanceof StatsError && err.status === 400) return { message: err.message };
    throw err;
  }
}

/**
 * Reads one panel again, with what the rest of the page shows, when only its dimension
 * changed (the campaigns' UTM parameter, the property): one request instead of eleven.
 */
function reloadPanel(p: Panel): void {
  saveChoice();
  const base = shownBase;
  const controller = inFlight;
  // A whole read under way would show the panel's former dimension: read everything again.
  if (!base || !controller || controller.signal.aborted || reading) {
    void load('change');
    return;
  }
  const mine = generation;
  const read = (panelReads.get(p) ?? 0) + 1;
  panelReads.set(p, read);
  p.table.setAttribute('aria-busy', 'true');
  readPanel(p, base, controller.signal)
    .then(
      (result) => {
        if (mine === generation && panelReads.get(p) === read) fillPanel(p, result);
      },
      () => {
        // Superseded by a newer read, or the service failed: a whole read shows why.
        if (mine === generation) void load('change');
      },
    )
    .finally(() => {
      if (panelReads.get(p) === read) p.table.removeAttribute('aria-busy');
    });
}

/** A panel's top values; a refusal of its own (400) shows in the panel, not for the page. */
type PanelRead = { dimension: string; rows: (StatsRow | VisitRow)[] } | { message: string } | undefined;

async function readPanel(p: Panel, base: StatsParams, signal: AbortSignal): Promise<PanelRead> {
  const dimension = p.dimension();
  if (!dimension) return undefined;
  try {
    const params = { ...base, granularity: 'total', group_by: dimension, limit: 10 };
    const res = p.visits
      ? await fetchStats<VisitResponse>({ ...params, metrics: VISIT_METRICS }, signal)
      : await fetchStats(params, signal);
    return { dimension, rows: res.data };
  } catch (err) {
    if (err instanceof StatsError && err.status === 400) return { message: err.message };
    throw err;
  }
}

function show(range: Range, series: StatsResponse, total: StatsResponse, tables: PanelRead[]): void {
  const sum = total.data[0] ?? { users: 0, events: 0 };
  const site = total.meta.site;
  ui.site.placeholder = site;
  ui.error.hidden = true;
  ui.results.hidden = false;
  const filtered = filters.length > 0 ? `; only events where ${filters.map(describeFilter).join(' and ')}` : '';
  ui.status.textContent = `Site ${site}, ${describe(range)}, ${range.timeZone}${filtered}`;

  ui.rangeNote.hidden = !range.note;
  ui.rangeNote.textContent = range.note ?? '';
  ui.empty.hidden = sum.events > 0;
  ui.empty.textContent =
    filters.length > 0
      ? `No events for site ${site} in this range match the filters.`
      : `No events for site ${site} in this range yet.`;

  void suggestProps(site);
  embed.show(site);
  ui.totalUsers.textContent = number.format(sum.users);
  ui.totalEvents.textContent = number.format(sum.events);
  // With a previous period, a range without events may answer no row: none before either.
  const before = total.meta.previous ? (total.data[0]?.previous ?? { users: 0, events: 0 }) : undefined;
  showChange(ui.usersChange, sum.users, before?.users, total.meta.previous);
  showChange(ui.eventsChange, sum.events, before?.events, total.meta.previous);
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
    usersAndEvents,
    (tr, r) => (tr.dataset.bucket = r.bucket),
  );
  panels.forEach((p, i) => fillPanel(p, tables[i]));
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

/** The site whose declared properties the property field offers. */
let propsOf: string | undefined;

/**
 * Offers the site's declared properties (the ones it rolls up, so fast over any range) in
 * the property field, once per site; with none chosen, shows the first.
 */
async function suggestProps(site: string): Promise<void> {
  if (site === propsOf) return;
  propsOf = site;
  const props = await declaredProps(site);
  if (propsOf !== site) return;
  propChoices.replaceChildren(...props.map((name) => new Option(name, name)));
  if (!propInput.value && props[0]) {
    propInput.value = props[0];
    propChanged();
  }
}

/** "+12 % compared to the previous period (1,234)", or why there is no such figure. */
function showChange(
  el: HTMLElement,
  current: number,
  previous: number | undefined,
  period: StatsResponse['meta']['previous'],
): void {
  if (previous === undefined || !period) return noPrevious(el);
  showFigure(el, change(current, previous), String(previous), number.format(previous), period);
}

function noPrevious(el: HTMLElement): void {
  el.className = 'change';
  el.textContent = 'No previous period to compare with: its data is no longer kept.';
  el.title = '';
  delete el.dataset.previous;
}

/**
 * A change figure and the previous value (`shown`; `exact` in data-previous), its tooltip the
 * previous period's bounds. `lowerIsBetter` colours a rise as bad (the bounce rate).
 */
function showFigure(
  el: HTMLElement,
  { text, direction }: ReturnType<typeof change>,
  exact: string,
  shown: string,
  period: NonNullable<StatsResponse['meta']['previous']>,
  lowerIsBetter = false,
): void {
  el.className = 'change';
  el.classList.add(lowerIsBetter && direction !== 'same' ? (direction === 'up' ? 'down' : 'up') : direction);
  el.dataset.previous = exact;
  const figure = document.createElement('strong');
  figure.textContent = text;
  el.replaceChildren(figure, ` compared to the previous period (${shown})`);
  el.title = `${period.from} to ${period.to}`;
}

/**
 * Visits, bounce rate and visit duration (mean, and the median in its note), each against
 * the previous period; or, when the service refused them for these filters, why.
 */
function showVisits(read: VisitResponse | { message: string }): void {
  const figures = [ui.totalVisits, ui.bounceRate, ui.visitDuration];
  const changes = [ui.visitsChange, ui.bounceChange, ui.durationChange];
  ui.visitsRefused.hidden = !('message' in read);
  if ('message' in read) {
    for (const el of figures) {
      el.textContent = '—';
      el.removeAttribute('data-value');
    }
    for (const el of changes) el.replaceChildren();
    ui.durationNote.textContent = '';
    ui.visitsRefused.textContent = `No visit figures for these filters: ${read.message}.`;
    return;
  }
  const none = { visits: 0, bounce_rate: null, visit_duration: { mean: null, median: null } };
  const row = read.data[0] ?? none;
  ui.totalVisits.textContent = number.format(row.visits);
  ui.totalVisits.dataset.value = String(row.visits);
  ui.bounceRate.textContent = row.bounce_rate === null ? '—' : percent(row.bounce_rate);
  ui.bounceRate.dataset.value = String(row.bounce_rate);
  const { mean, median } = row.visit_duration;
  ui.visitDuration.textContent = mean === null ? '—' : duration(mean);
  ui.visitDuration.dataset.value = String(mean);
  ui.visitDuration.dataset.median = String(median);
  ui.durationNote.textContent =
    median === null
      ? 'From a visit’s first event to its last: no visits.'
      : `Mean, from a visit’s first event to its last; median ${duration(median)}.`;
  const period = read.meta.previous;
  if (!period) {
    changes.forEach(noPrevious);
    return;
  }
  const before = read.data[0]?.previous ?? none;
  const previousVisits = before.visits ?? 0;
  const previousRate = before.bounce_rate ?? null;
  const previousMean = before.visit_duration?.mean ?? null;
  showFigure(ui.visitsChange, change(row.visits, previousVisits), String(previousVisits), number.format(previousVisits), period);
  showFigure(
    ui.bounceChange,
    pointChange(row.bounce_rate, previousRate),
    String(previousRate),
    previousRate === null ? 'no visits' : percent(previousRate),
    period,
    true,
  );
  showFigure(
    ui.durationChange,
    // No visits before: "new" when there are some now (whatever their length), else no change.
    previousMean === null ? change(mean === null ? 0 : 1, 0) : change(mean ?? 0, previousMean),
    String(previousMean),
    previousMean === null ? 'no visits' : duration(previousMean),
    period,
  );
}

function fillPanel(p: Panel, read: PanelRead): void {
  if (!read) {
    emptyTable(p.table, p.unset ?? 'Nothing to show.');
    return;
  }
  if ('message' in read) {
    emptyTable(p.table, `headcount refused this panel: ${read.message}`);
    return;
  }
  const { dimension, rows } = read;
  if (p.visits) {
    fillTable(
      p.table,
      rows,
      (r) => valueLabel(rowValue(r, dimension)),
      (r) => {
        const v = r as VisitRow;
        return [number.format(v.visits), v.bounce_rate === null ? '—' : percent(v.bounce_rate)];
      },
      (tr, r) => (tr.dataset.value = rowValue(r, dimension) ?? ''),
    );
    return;
  }
  p.table.querySelector('thead th')!.textContent = dimensionLabel(dimension);
  fillTable(
    p.table,
    rows,
    (r) => {
      const value = rowValue(r, dimension);
      const filter = rowFilter(dimension, value);
      const name = value !== null && value !== '' ? (p.label?.(value) ?? value) : valueLabel(null);
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'pick';
      button.textContent = name;
      button.title = `Filter: ${describeFilter(filter)}`;
      return button;
    },
    usersAndEvents,
    (tr, r) => (tr.dataset.filter = formatFilter(rowFilter(dimension, rowValue(r, dimension)))),
  );
}

function emptyTable(table: HTMLTableElement, text: string): void {
  const tr = document.createElement('tr');
  const td = tr.insertCell();
  td.colSpan = 3;
  td.className = 'none';
  td.textContent = text;
  table.tBodies[0]!.replaceChildren(tr);
}

/** A row's value of `dimension` (a string or null: no value). */
const rowValue = (r: StatsRow | VisitRow, dimension: string): string | null => {
  const value = (r as Record<string, unknown>)[dimension];
  return typeof value === 'string' ? value : null;
};

const usersAndEvents = (r: StatsRow | VisitRow): string[] => [number.format(r.users ?? 0), number.format(r.events ?? 0)];

function fillTable<R extends StatsRow | VisitRow>(
  table: HTMLTableElement,
  rows: R[],
  name: (r: R) => string | HTMLElement,
  cells: (r: R) => string[],
  decorate?: (tr: HTMLTableRowElement, r: R) => void,
): void {
  if (rows.length === 0) {
    emptyTable(table, filters.length > 0 ? 'None in this range with these filters.' : 'None in this range.');
    return;
  }
  table.tBodies[0]!.replaceChildren(
    ...rows.map((r) => {
      const tr = document.createElement('tr');
      const th = document.createElement('th');
      th.scope = 'row';
      th.append(name(r));
      tr.append(th);
      for (const text of cells(r)) tr.insertCell().textContent = text;
      decorate?.(tr, r);
      return tr;
    }),
  );
}

/** The filter bar: a chip per filter, each with a button that removes it. */
function showFilters(): void {
  ui.chips.replaceChildren(
    ...filters.map((f, i) => {
      const li = document.createElement('li');
      li.className = 'chip';
      li.dataset.filter = formatFilter(f);
      const text = describeFilter(f);
      const span = document.createElement('span');
      span.textContent = text;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'remove';
      remove.textContent = '×';
      remove.setAttribute('aria-label', `Remove the filter ${text}`);
      remove.title = 'Remove this filter';
      remove.addEventListener('click', () => {
        setFilters(filters.filter((_, j) => j !== i));
        // Focus stays in the bar: on the next chip's button, or the hint.
        const next = ui.chips.querySelectorAll<HTMLButtonElement>('button.remove')[Math.min(i, filters.length - 1)];
        (next ?? byId('filters')).focus();
      });
      li.append(span, remove);
      return li;
    }),
  );
  ui.chips.hidden = filters.length === 0;
  ui.filtersHint.hidden = filters.length > 0;
  ui.clearFilters.hidden = filters.length < 2;
}

function setFilters(next: Filter[]): void {
  filters = next;
  showFilters();
  saveChoice();
  void load('change');
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
utmSelect.addEventListener('change', () => reloadPanel(campaigns));
/** The property shown: Enter and then leaving the field read it once. */
let shownProp = propInput.value;
const propChanged = (): void => {
  if (propInput.value === shownProp || (propInput.value && !propInput.checkValidity())) return;
  shownProp = propInput.value;
  reloadPanel(property);
};
propInput.addEventListener('change', propChanged);
propInput.addEventListener('keydown', (event) => event.key === 'Enter' && propChanged());
// A click anywhere on a panel's row (its button for the keyboard) filters by the row's value.
byId('breakdowns').addEventListener('click', (event) => {
  const tr = (event.target as Element).closest<HTMLTableRowElement>('tr[data-filter]');
  const filter = tr?.dataset.filter === undefined ? undefined : parseFilter(tr.dataset.filter);
  if (!filter) return;
  setFilters(withFilter(filters, filter));
  // From the keyboard (a click of no mouse button: detail 0) the row's button is gone with
  // the old table: the focus goes to the new chip, where its filter can be removed again.
  if (event.detail === 0)
    ui.chips.querySelector<HTMLButtonElement>(`li[data-filter="${CSS.escape(formatFilter(filter))}"] button`)?.focus();
});
ui.clearFilters.addEventListener('click', () => {
  setFilters([]);
  byId('filters').focus();
});
byId('controls').addEventListener('submit', (e) => {
  e.preventDefault();
  changed();
});
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && (currentRange().live || !ui.error.hidden)) void load('poll');
  else if (document.visibilityState === 'hidden') clearTimeout(timer);
});
void load('change');
