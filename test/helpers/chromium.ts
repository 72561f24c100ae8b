import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';
import { aptInstall, canApt } from '../../src/db/local-cluster.js';
import { createLogger } from '../../src/log.js';

/** Debian's Chromium (package `chromium`), or CHROMIUM_PATH. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * The Chromium to drive, installed with apt-get when it is missing and this process may
 * (root), as the PostgreSQL packages are; otherwise the reason it cannot be had.
 */
export async function findChromium(): Promise<{ path: string } | { missing: string }> {
  if (existsSync(CHROMIUM)) return { path: CHROMIUM };
  if (process.env.CHROMIUM_PATH) return { missing: `CHROMIUM_PATH=${CHROMIUM} does not exist` };
  if (!canApt()) return { missing: 'Chromium is not installed and only root can install it (apt-get install chromium)' };
  try {
    await aptInstall('chromium', createLogger('warn'));
  } catch (err) {
    return { missing: `apt-get install chromium failed: ${String(err).split('\n')[0]}` };
  }
  return existsSync(CHROMIUM) ? { path: CHROMIUM } : { missing: `installed chromium, but ${CHROMIUM} is missing` };
}

/** Headless, with nothing of its own on the network; Playwright gives it a fresh profile. */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
