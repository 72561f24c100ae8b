import { type Browser, chromium } from 'playwright-core';
import { systemProgram } from './system-package.js';

/** Debian's Chromium (package `chromium`), or CHROMIUM_PATH. */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * The Chromium to drive, installed with apt-get when it is missing and this process may
 * (root), as the PostgreSQL packages are; otherwise the reason it cannot be had.
 */
export const findChromium = (): Promise<{ path: string } | { missing: string }> =>
  systemProgram(CHROMIUM, 'chromium', process.env.CHROMIUM_PATH ? 'CHROMIUM_PATH' : undefined);

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
