import { createIngestKey, StatsError } from './api.js';

/** Where the service serves the tracker (TRACKER_SCRIPT_PATH, written into the page's meta tag). */
const scriptPath = (): string =>
  document.querySelector<HTMLMetaElement>('meta[name="headcount-script"]')?.content || '/script.js';

/** What the tag shows until the page has a key to put there. */
export const KEY_PLACEHOLDER = 'hck_…';

/**
 * The tracking code panel: the `<script>` line to paste into a site's pages, with an
 * ingest key. A key's secret is shown only when it is made, so the line holds a
 * placeholder and the command that makes one, and, with an admin key, a button that
 * makes one here (POST /v1/keys) and puts it in the line. A key made here is kept only in
 * this page's memory, for its site.
 */
export class EmbedPanel {
  private site: string | undefined;
  /** The key made here for a site, until the page is left. */
  private readonly made = new Map<string, { key: string; id: string }>();

  constructor(
    private readonly ui: {
      site: HTMLElement;
      tag: HTMLElement;
      key: HTMLElement;
      create: HTMLButtonElement;
      status: HTMLElement;
    },
  ) {
    ui.create.addEventListener('click', () => void this.create());
  }

  /** Shows the line for `site` (the site the page shows). */
  show(site: string): void {
    if (site === this.site) return;
    this.site = site;
    this.ui.status.textContent = '';
    this.render();
  }

  private render(): void {
    const site = this.site ?? '';
    const made = this.made.get(site);
    const src = new URL(scriptPath(), location.origin).href;
    this.ui.site.textContent = site;
    this.ui.tag.textContent = `<script defer src="${src}" data-site="${site}" data-key="${made?.key ?? KEY_PLACEHOLDER}"></script>`;
    this.ui.create.hidden = made !== undefined;
    const code = (text: string): HTMLElement => {
      const el = document.createElement('code');
      el.textContent = text;
      return el;
    };
    if (made) {
      this.ui.key.replaceChildren(
        `The key is an ingest key of site ${site} (id ${made.id}): it can only send events to it, so it may be public. ` +
          'It is shown only now: copy the line. ',
        code(`npm run keys -- revoke ${made.id}`),
        ' revokes it.',
      );
    } else {
      this.ui.key.replaceChildren(
        code(KEY_PLACEHOLDER),
        ` stands for an ingest key of site ${site}: `,
        code(`npm run keys -- create --site ${site} --scope ingest --name tracker`),
        ' prints one; if this page reads with an admin key, the button below makes one.',
      );
    }
  }

  private async create(): Promise<void> {
    const site = this.site;
    if (site === undefined) return;
    this.ui.create.disabled = true;
    this.ui.status.textContent = 'Creating a key…';
    try {
      const made = await createIngestKey(site);
      this.made.set(site, made);
      this.ui.status.textContent = `Created an ingest key for site ${site}.`;
    } catch (err) {
      const e = err instanceof StatsError ? err : new StatsError(String(err), 0);
      this.ui.status.textContent =
        e.status === 403
          ? `This page's key may not create keys (only an admin key may): run the command above where the service runs.`
          : `No key was created: ${e.message}`;
    } finally {
      this.ui.create.disabled = false;
      if (site === this.site) this.render();
    }
  }
}
