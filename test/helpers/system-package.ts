import { existsSync } from 'node:fs';
import { aptInstall, canApt } from '../../src/db/local-cluster.js';
import { createLogger } from '../../src/log.js';

/**
 * A program a test needs from a Debian package (`pkg`), installed with apt-get when it is
 * missing and this process may (root), as the PostgreSQL packages are; otherwise the
 * reason it cannot be had. `overriddenBy`: the variable that named `file`, if one did.
 */
export async function systemProgram(
  file: string,
  pkg: string,
  overriddenBy?: string,
): Promise<{ path: string } | { missing: string }> {
  if (existsSync(file)) return { path: file };
  if (overriddenBy) return { missing: `${overriddenBy}=${file} does not exist` };
  if (!canApt()) return { missing: `${pkg} is not installed and only root can install it (apt-get install ${pkg})` };
  try {
    await aptInstall(pkg, createLogger('warn'));
  } catch (err) {
    return { missing: `apt-get install ${pkg} failed: ${String(err).split('\n')[0]}` };
  }
  return existsSync(file) ? { path: file } : { missing: `installed ${pkg}, but ${file} is missing` };
}
