import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const SCRIPT = path.resolve('scripts/setup-extension.sh');
/** Where the step looks for archives by default: ../shared/vendor beside the checkout. */
const VENDOR = path.resolve('..', 'shared', 'vendor');
const realCitusArchive = fs.existsSync(VENDOR)
  ? fs
      .readdirSync(VENDOR)
      .filter((f) => /^citus-13\.2\.\d+\.tar\.gz$/.test(f))
      .map((f) => path.join(VENDOR, f))[0]
  : undefined;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'headcount-setup-ext-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let made = 0;

/**
 * A checkout of its own (the script under scripts/, archives in ../shared/vendor) and a
 * server as pg_config describes it (version, a library folder holding `installed`): the
 * step decides from these alone, and DRY_RUN=1 stops it before apt-get and the build.
 */
function layout(opts: { pgVersion: string; installed?: Record<string, string>; archives?: string[] }) {
  const root = path.join(tmp, String(made++));
  const repo = path.join(root, 'repo');
  const vendor = path.join(root, 'shared', 'vendor');
  const lib = path.join(root, 'lib');
  for (const dir of [path.join(repo, 'scripts'), vendor, lib]) fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(SCRIPT, path.join(repo, 'scripts', 'setup-extension.sh'));
  for (const [file, text] of Object.entries(opts.installed ?? {})) fs.writeFileSync(path.join(lib, file), text);
  const pgConfig = path.join(root, 'pg_config');
  fs.writeFileSync(
    pgConfig,
    `#!/bin/sh\ncase "$1" in --version) echo "PostgreSQL ${opts.pgVersion} (test)";; --pkglibdir) echo ${lib};; *) exit 1;; esac\n`,
    { mode: 0o755 },
  );
  for (const name of opts.archives ?? []) fakeArchive(vendor, name);
  const setup = (args: string[], env: Record<string, string> = {}) =>
    run('bash', [path.join(repo, 'scripts', 'setup-extension.sh'), ...args], {
      env: { PATH: process.env.PATH, PG_CONFIG: pgConfig, DRY_RUN: '1', ...env },
    });
  return { root, vendor, setup };
}

/** A release archive as `git archive` makes it: <name>-<version>/ with a header in it. */
function fakeArchive(dir: string, name: string): void {
  const top = name.replace(/\.tar\.gz$/, '');
  const src = path.join(dir, 'src-of', top, 'src', 'include');
  fs.mkdirSync(src, { recursive: true });
  fs.writeFileSync(path.join(src, 'pg_version_compat.h'), '/* nothing to remove */\n');
  execFileSync('tar', ['-czf', path.join(dir, name), '-C', path.join(dir, 'src-of'), top]);
}

describe('npm run setup:citus (scripts/setup-extension.sh)', () => {
  it('takes the newest archive of ../shared/vendor when none is given, and does nothing when that version is installed', async () => {
    const { setup } = layout({
      pgVersion: '15.20',
      installed: { 'citus.so': 'x\0Citus 13.2.2 on x86_64\0' },
      archives: ['citus-12.1.12.tar.gz', 'citus-13.2.2.tar.gz'],
    });
    // Not a dry run: with that version installed, the step neither needs root nor builds.
    const { stdout } = await setup(['citus'], { DRY_RUN: '' });
    expect(stdout).toContain('citus 13.2.2 is already installed');
  });

  it('builds when another version is installed, and says so', async () => {
    const { setup } = layout({
      pgVersion: '15.20',
      installed: { 'citus.so': 'x\0Citus 12.1.12 on x86_64\0' },
      archives: ['citus-13.2.2.tar.gz'],
    });
    const { stdout } = await setup(['citus']);
    expect(stdout).toContain('citus 12.1.12 is installed');
    expect(stdout).toContain('would build citus 13.2.2 from citus-13.2.2.tar.gz against PostgreSQL 15.20');
  });

  it('refuses an archive it cannot find, naming where it looked', async () => {
    const { setup } = layout({ pgVersion: '15.20' });
    await expect(setup(['citus'])).rejects.toMatchObject({ stderr: expect.stringContaining('no citus-*.tar.gz in') });
  });

  // The real archive: the edit must find Citus' own text. Skipped where it is not beside the checkout.
  // Each unpacks the 8 MB archive a few times: seconds, more on a loaded machine.
  describe.skipIf(!realCitusArchive)(
    "Citus' have_createdb_privilege copy, in the unpacked sources only",
    { timeout: 120_000 },
    () => {
      const shim = /^have_createdb_privilege\(void\)$/m;
      const prepared = async (pgVersion: string): Promise<string> => {
        const { root, setup } = layout({ pgVersion });
        const keep = path.join(root, 'prepared');
        await setup(['citus', realCitusArchive!], { FORCE: '1', DRY_RUN_KEEP: keep });
        return fs.readFileSync(path.join(keep, 'src', 'include', 'pg_version_compat.h'), 'utf8');
      };

      it('is left out for PostgreSQL 15.20 and later, which declares the function itself', async () => {
        expect(await prepared('15.20')).not.toMatch(shim);
        expect(await prepared('15.21')).not.toMatch(shim);
      });

      it('is kept before 15.20 and from 16 on (where Citus compiles no copy), and the archive is never changed', async () => {
        expect(await prepared('15.19')).toMatch(shim);
        expect(await prepared('16.4')).toMatch(shim);
        const { stdout } = await run(
          'tar',
          ['-xzOf', realCitusArchive!, `${path.basename(realCitusArchive!, '.tar.gz')}/src/include/pg_version_compat.h`],
          {
            maxBuffer: 1 << 24,
          },
        );
        expect(stdout).toMatch(shim);
      });
    },
  );
});
