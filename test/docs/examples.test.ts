import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  brokenLinks,
  type Block,
  daysSince,
  differences,
  type Example,
  parseBlocks,
  shiftDates,
  substitute,
} from '../helpers/doc-examples.js';
import { createTestDatabase, describeEachMode } from '../helpers/db.js';
import { startServer } from '../helpers/server.js';
import { systemProgram } from '../helpers/system-package.js';

/**
 * Every example of README.md and docs/*.md, run against the real service as a reader would
 * run it, in order, one database per file: the documented output must be what it prints.
 *
 * The commands run in bash as written, with curl (on the machine: Debian's curl is part of
 * the base system this project needs anyway, and what a reader uses; running the requests
 * through fetch would test a parser of curl's options instead of the commands). Only what
 * legitimately differs is rewritten: the service's address (the suite's server listens on
 * a free port), `npm run -s keys --` (its pre-script builds dist/, which `npm test` has
 * built: the test runs dist/cli/keys.js, as the script then does), the keys a reader
 * pastes, and the dates, which the examples give as if today were EXAMPLES_DAY.
 */
const EXAMPLES_DAY = '2026-11-24';
/** At least this many examples must run: a parser that found none cannot pass. */
const MIN_EXAMPLES = 40;

const FILES = [
  'README.md',
  ...fs
    .readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];
const blocksOf = (file: string): Block[] => parseBlocks(file, fs.readFileSync(file, 'utf8'));
const ASSIGNMENT = /^([A-Z][A-Z0-9_]*)=(\S+)(\s+#.*)?$/;

const curl = await systemProgram('/usr/bin/curl', 'curl');
const missing = 'missing' in curl ? curl.missing : undefined;
if (missing) console.log(`documentation examples: skipped, ${missing}`);

/** `npm run -s keys --` and `npm run -s psql --`: their pre-scripts build dist/, which `npm test` has built. */
const NPM_CLI = /^npm run -s (keys|psql) --/;

async function run(example: Example, command: string, env: Record<string, string>): Promise<string> {
  if (!/^curl /.test(command) && !NPM_CLI.test(command)) {
    throw new Error(
      `${example.file}:${example.line}: the suite runs curl, npm run -s keys, npm run -s psql and NAME=value; ` +
        `mark a block it cannot run with <!-- not-tested: why -->: ${command}`,
    );
  }
  const script = command.replace(NPM_CLI, (_, cli: string) => `node ${path.resolve(`dist/cli/${cli}.js`)}`);
  const { stdout } = await promisify(execFile)('bash', ['-c', script], { env, timeout: 30_000 });
  return stdout;
}

describe('the documentation examples', () => {
  it(`are found: at least ${MIN_EXAMPLES}, in README.md and docs/, and every block left out says why`, () => {
    const blocks = FILES.flatMap(blocksOf);
    const examples = blocks.flatMap((b) => b.examples);
    expect(examples.length).toBeGreaterThanOrEqual(MIN_EXAMPLES);
    for (const file of ['README.md', 'docs/api.md']) expect(examples.filter((e) => e.file === file).length).toBeGreaterThan(5);
    for (const b of blocks.filter((b) => b.notTested !== undefined)) expect(b.notTested, `${b.file}:${b.line}`).not.toBe('');
  });

  it('link only to files and headings that exist', () => {
    const read = (file: string): string | null => {
      if (!fs.existsSync(file)) return null;
      return fs.statSync(file).isDirectory() ? '' : fs.readFileSync(file, 'utf8');
    };
    expect(FILES.flatMap((file) => brokenLinks(file, fs.readFileSync(file, 'utf8'), read))).toEqual([]);
  });
});

describe.skipIf(missing !== undefined)(`the documentation examples, run${missing ? ` (${missing})` : ''}`, () =>
  describeEachMode('against the service', (mode) => {
    const shift = daysSince(EXAMPLES_DAY);

    for (const file of FILES) {
      const examples = blocksOf(file).flatMap((b) => b.examples);
      if (examples.length === 0) continue;

      it(
        `${file}: every example answers as documented (${examples.length} commands, in order)`,
        { timeout: 180_000 },
        async () => {
          expect(shift).toBeGreaterThanOrEqual(0);
          const db = await createTestDatabase(mode);
          const server = await startServer({ DATABASE_URL: db.url });
          const learned = new Map<string, string>();
          const vars: Record<string, string> = {};
          const problems: string[] = [];
          try {
            for (const example of examples) {
              const command = shiftDates(substitute(example.command, learned), shift).replaceAll(
                'http://127.0.0.1:8080',
                `http://127.0.0.1:${server.port}`,
              );
              const assignment = ASSIGNMENT.exec(command);
              if (assignment) {
                vars[assignment[1]!] = assignment[2]!;
                if (example.expected.some((l) => l !== ''))
                  problems.push(`${file}:${example.line}: an assignment prints nothing`);
                continue;
              }
              // PSQLRC: the output of psql as it comes, whatever this machine's ~/.psqlrc says.
              const env = {
                PATH: process.env.PATH ?? '',
                HOME: process.env.HOME ?? '/tmp',
                PSQLRC: '/dev/null',
                DATABASE_URL: db.url,
                ...vars,
              };
              let stdout: string;
              try {
                stdout = shiftDates(await run(example, command, env), -shift);
              } catch (err) {
                problems.push(`${file}:${example.line}: ${err instanceof Error ? err.message : String(err)}`);
                continue;
              }
              for (const p of differences(example, stdout, learned)) problems.push(`${file}:${example.line}: ${p}`);
            }
          } finally {
            server.child.kill('SIGTERM');
            await server.exited;
            await db.drop();
          }
          expect(problems).toEqual([]);
        },
      );
    }
  }),
);
