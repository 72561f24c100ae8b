/**
 * The examples of the documentation, read from its Markdown: every ```sh block holds
 * commands (`$ ` lines, continued while a quote is open or a line ends with `\`), each
 * followed by the output it prints. A block the suite cannot run (it starts the service,
 * needs Docker, takes minutes) is preceded by `<!-- not-tested: why -->`.
 */

export interface Example {
  file: string;
  /** 1-based line of the `$ ` line. */
  line: number;
  command: string;
  expected: string[];
}

export interface Block {
  file: string;
  line: number;
  /** Why the suite does not run it, from `<!-- not-tested: why -->`; undefined: it runs. */
  notTested?: string;
  examples: Example[];
}

const NOT_TESTED = /^<!--\s*not-tested:\s*(.*?)\s*-->$/;

/** Whether `text` leaves a shell quote open or ends with a line continuation. */
function continues(text: string): boolean {
  let quote: "'" | '"' | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote === "'") {
      if (c === "'") quote = null;
    } else if (c === '\\') i++;
    else if (quote === '"') {
      if (c === '"') quote = null;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      // A comment, to the end of its line: its quotes are prose.
      const eol = text.indexOf('\n', i);
      if (eol < 0) break;
      i = eol;
    }
  }
  return quote !== null || text.endsWith('\\');
}

/** The ```sh blocks of one Markdown file, with their commands and documented output. */
export function parseBlocks(file: string, markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  let previous = '';
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!fence) {
      if (lines[i]!.trim() !== '') previous = lines[i]!.trim();
      continue;
    }
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]!); i++) body.push(lines[i]!);
    if (i === lines.length) throw new Error(`${file}:${start + 1}: a code block is not closed`);
    const notTested = NOT_TESTED.exec(previous)?.[1];
    previous = '';
    if (fence[1] !== 'sh') continue;
    const block: Block = { file, line: start + 1, notTested, examples: [] };
    blocks.push(block);
    if (notTested !== undefined) continue;
    for (let j = 0; j < body.length; j++) {
      const first = body[j]!;
      if (!first.startsWith('$ ')) {
        throw new Error(
          `${file}:${start + 2 + j}: a line of a sh block outside any command (commands start with "$ "; ` +
            'mark a block the suite cannot run with <!-- not-tested: why -->)',
        );
      }
      const example: Example = { file, line: start + 2 + j, command: first.slice(2), expected: [] };
      while (continues(example.command) && j + 1 < body.length) example.command += `\n${body[++j]}`;
      while (j + 1 < body.length && !body[j + 1]!.startsWith('$ ')) example.expected.push(body[++j]!);
      block.examples.push(example);
    }
    if (block.examples.length === 0) throw new Error(`${file}:${start + 1}: a sh block without a command`);
  }
  return blocks;
}

const DAY_MS = 86_400_000;
const DATE = /(?<!\d)(20\d\d)(-?)(\d\d)\2(\d\d)(?!\d)/g;

/**
 * Moves every calendar date in `text` (2026-11-21, 20261121, also inside instants) by
 * `days`. The examples are dated as if today were their writing day; run later, they move
 * to the same place relative to today (as a reader would move them), and the answers
 * move back.
 */
export function shiftDates(text: string, days: number): string {
  if (days === 0) return text;
  return text.replace(DATE, (all, y: string, sep: string, m: string, d: string) => {
    const ms = Date.UTC(Number(y), Number(m) - 1, Number(d));
    const back = new Date(ms);
    if (back.getUTCMonth() !== Number(m) - 1 || back.getUTCDate() !== Number(d)) return all; // not a date
    const iso = new Date(ms + days * DAY_MS).toISOString().slice(0, 10);
    return sep ? iso : iso.replaceAll('-', '');
  });
}

/** Whole days from `docDay` (YYYY-MM-DD, the examples' "today") to today, UTC. */
export const daysSince = (docDay: string, nowMs = Date.now()): number =>
  Math.floor(nowMs / DAY_MS) - Math.floor(Date.parse(`${docDay}T00:00:00Z`) / DAY_MS);

/**
 * What legitimately differs between the documented output and a run: the keys and key ids
 * `npm run keys` and `POST /v1/keys` make (a reader pastes theirs into the next commands;
 * `learned` maps the documented ones to the run's) and, in the answer to a command that asks `$(date ...)`,
 * the epoch numbers and dates derived from the clock.
 */
const KEY = /hck_[A-Za-z0-9_-]{43}/g;
// `id 3f9c2a7b1e04` as npm run keys prints it, `"id":"3f9c2a7b1e04"` as POST /v1/keys answers it.
const KEY_ID = /(?<=\bid |"id":")[0-9a-f]{12}\b/g;

function learn(expected: string, actual: string, learned: Map<string, string>): void {
  for (const pattern of [KEY, KEY_ID]) {
    const doc = expected.match(pattern) ?? [];
    const run = actual.match(pattern) ?? [];
    if (doc.length !== run.length) continue;
    doc.forEach((token, k) => {
      if (!learned.has(token)) learned.set(token, run[k]!);
    });
  }
}

export function substitute(text: string, learned: Map<string, string>): string {
  let out = text;
  for (const [doc, run] of learned) out = out.replaceAll(doc, run);
  return out;
}

const clockDerived = (line: string): string =>
  line.replace(/\d{4}-\d\d-\d\d(T[\d:.]+(Z|[+-]\d\d:\d\d)?)?/g, '<date>').replace(/\d{9,}/g, '<epoch>');

const trimEnd = (lines: string[]): string[] => {
  const out = [...lines];
  while (out.length > 0 && out[out.length - 1] === '') out.pop();
  return out;
};

/** `curl -i` (or --include): the status line and headers come first. */
const includesHeaders = (command: string): boolean => /^curl\b.*\s(-i|--include|-[a-zA-Z]*i[a-zA-Z]*)(\s|$)/s.test(command);

/**
 * Differences between an example's documented output and what the run printed (empty:
 * they agree). With `curl -i` the status line must be the same and each documented
 * header present with the same value (a run has more: Date, X-Request-Id...); the body,
 * like any other output, line by line, a carriage return included.
 */
export function differences(example: Example, actualStdout: string, learned: Map<string, string>): string[] {
  const clock = /\$\(date\b/.test(example.command) ? clockDerived : (line: string) => line;
  let expected = example.expected;
  let actual = actualStdout.split('\n');
  const problems: string[] = [];
  if (includesHeaders(example.command)) {
    const blank = actual.findIndex((l) => l.replace(/\r$/, '') === '');
    const head = (blank < 0 ? actual : actual.slice(0, blank)).map((l) => l.replace(/\r$/, ''));
    const docBlank = expected.indexOf('');
    const docHead = docBlank < 0 ? expected : expected.slice(0, docBlank);
    if (docHead[0] !== head[0])
      problems.push(`status line: documented ${JSON.stringify(docHead[0])}, got ${JSON.stringify(head[0])}`);
    for (const header of docHead.slice(1)) {
      const name = header.slice(0, header.indexOf(':')).toLowerCase();
      const got = head.slice(1).filter((h) => h.slice(0, h.indexOf(':')).toLowerCase() === name);
      const wanted = substitute(header, learned);
      if (!got.some((h) => h === wanted)) {
        problems.push(`header: documented ${JSON.stringify(header)}, got ${got.length ? JSON.stringify(got) : 'none'}`);
      }
    }
    expected = docBlank < 0 ? [] : expected.slice(docBlank + 1);
    actual = blank < 0 ? [] : actual.slice(blank + 1);
  }
  expected = trimEnd(expected);
  actual = trimEnd(actual);
  for (let k = 0; k < Math.max(expected.length, actual.length); k++) {
    const doc = expected[k];
    const run = actual[k];
    if (doc !== undefined && run !== undefined) learn(doc, run, learned);
    const want = doc === undefined ? undefined : clock(substitute(doc, learned));
    const got = run === undefined ? undefined : clock(run);
    if (want !== got) problems.push(`line ${k + 1}: documented ${JSON.stringify(doc)}, got ${JSON.stringify(run)}`);
  }
  return problems;
}

/** GitHub's anchor of a heading: lowercase, punctuation dropped, spaces to hyphens. */
export const anchorOf = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replaceAll(' ', '-');

/**
 * The relative links of a Markdown file that lead nowhere: to a missing file, or to an
 * anchor that no heading of the target makes. `read(path)` gives a file's text, or null.
 */
export function brokenLinks(file: string, markdown: string, read: (path: string) => string | null): string[] {
  const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/') + 1) : '';
  const broken: string[] = [];
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '');
  for (const [, target] of prose.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/.test(target!)) continue; // http:, https:, mailto:
    const [pathPart, anchor] = target!.split('#') as [string, string | undefined];
    const path = pathPart === '' ? file : normalise(dir + pathPart);
    const text = read(path);
    if (text === null) broken.push(`${file}: ${target} (no ${path})`);
    else if (anchor !== undefined && !headingsOf(text).includes(anchor)) broken.push(`${file}: ${target} (no such heading)`);
  }
  return broken;
}

const headingsOf = (markdown: string): string[] =>
  [...markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1]!));

function normalise(path: string): string {
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '..') out.pop();
    else if (part !== '.' && part !== '') out.push(part);
  }
  return out.join('/');
}
