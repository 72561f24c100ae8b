// headcount's tracker: served as /script.js (docs/tracker.md). Embedded as
//   <script defer src="https://HOST/script.js" data-site="shop" data-key="hck_…"></script>
// it sends a pageview on load and on SPA navigation, custom events through
// window.headcount(kind, {props}), and optionally outbound-link and file-download clicks,
// to POST /v1/events as text/plain (no CORS preflight). No cookies, no storage: the
// service derives the visitor id from the request (a daily salt, the site, the address
// and the user agent). Kept small: ≤ 2 KB gzipped (test/tracker/script.test.ts).

type Props = Record<string, string>;
type Call = [kind: string, options?: { props?: Props }];
interface Queue {
  (...args: Call): void;
  q?: IArguments[] | Call[];
}

((w, d) => {
  const script = d.currentScript as HTMLScriptElement | null;
  if (!script) return;
  const attr = (name: string): string | null => script.getAttribute(`data-${name}`);
  const site = attr('site');
  const key = attr('key');
  const endpoint = (attr('api') ?? new URL('/v1/events', script.src).href) + (key ? `?key=${encodeURIComponent(key)}` : '');
  const l = w.location;
  const nav = navigator as Navigator & { globalPrivacyControl?: boolean };
  const off =
    (attr('allow-localhost') === null && (/^localhost$|^127\.|^\[::1\]$/.test(l.hostname) || l.protocol === 'file:')) ||
    (attr('respect-dnt') !== null && (nav.doNotTrack === '1' || nav.globalPrivacyControl === true));

  /** The page: path, and of the query only the utm_ parameters unless data-include-query. */
  const page = (): string => {
    if (attr('include-query') !== null) return l.pathname + l.search;
    const kept = new URLSearchParams();
    new URLSearchParams(l.search).forEach((v, k) => k.startsWith('utm_') && kept.append(k, v));
    const q = kept.toString();
    return l.pathname + (q ? `?${q}` : '');
  };

  const send = (kind: string, props?: Props): void => {
    if (off) return;
    const query = new URLSearchParams(l.search);
    const event: Record<string, unknown> = { kind, page: page(), screen_width: w.screen.width };
    if (site) event.site = site;
    // The referrer of the first page only when it is another site's.
    const ref = d.referrer;
    if (ref && new URL(ref).host !== l.host) event.referrer = ref;
    for (const p of ['source', 'medium', 'campaign', 'content', 'term']) {
      const v = query.get(`utm_${p}`);
      if (v) event[`utm_${p}`] = v;
    }
    if (props) event.props = props;
    const body = JSON.stringify({ events: [event] });
    if (!(nav.sendBeacon && nav.sendBeacon(endpoint, new Blob([body], { type: 'text/plain' })))) {
      void fetch(endpoint, { method: 'POST', body, keepalive: true, headers: { 'Content-Type': 'text/plain' } }).catch(() => {});
    }
  };

  let last: string | undefined;
  const pageview = (): void => {
    const at = l.pathname + l.search + l.hash;
    if (at === last) return;
    last = at;
    send('pageview');
  };

  const queued = (w as unknown as { headcount?: Queue }).headcount?.q ?? [];
  const api = (kind: string, options?: { props?: Props }): void => send(kind, options?.props);
  (w as unknown as { headcount: typeof api }).headcount = api;
  for (const args of queued) api(...(Array.from(args) as Call));

  const h = w.history;
  for (const m of ['pushState', 'replaceState'] as const) {
    const original = h[m].bind(h);
    h[m] = (...args: Parameters<History['pushState']>) => {
      original(...args);
      pageview();
    };
  }
  w.addEventListener('popstate', pageview);
  w.addEventListener('hashchange', pageview);

  const outbound = attr('outbound-links') !== null;
  const downloads = attr('file-downloads') !== null;
  if (outbound || downloads) {
    const files = /\.(pdf|xlsx?|docx?|pptx?|csv|txt|zip|gz|tgz|rar|7z|dmg|exe|msi|pkg|deb|rpm|apk|mp3|mp4|mov|avi|wav|epub|iso)$/i;
    const click = (e: MouseEvent): void => {
      const a = (e.target as Element | null)?.closest?.('a');
      if (!a || !a.href) return;
      const url = new URL(a.href, l.href);
      if (downloads && files.test(url.pathname)) send('file_download', { url: url.href.slice(0, 500) });
      else if (outbound && /^https?:$/.test(url.protocol) && url.host !== l.host) send('outbound_link', { url: url.href.slice(0, 500) });
    };
    d.addEventListener('click', click);
    d.addEventListener('auxclick', click);
  }

  pageview();
})(window, document);
