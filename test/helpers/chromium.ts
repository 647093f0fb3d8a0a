import { existsSync } from 'node:fs';
import puppeteer, { type Browser } from 'puppeteer-core';

/** Debian's Chromium (or CHROMIUM_PATH), which the browser tests drive with puppeteer-core. */
export const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser']
  .find((p): p is string => p !== undefined && p !== '' && existsSync(p));
/** Why the browser tests cannot run here, or false when they can: for describe's `skip`. */
export const CHROMIUM_MISSING: string | false = CHROMIUM === undefined
  ? 'Chromium is not installed: sudo apt-get install chromium (or set CHROMIUM_PATH)'
  : false;
// CI installs Chromium (.ci/run): there, a missing one is a failure, never a silent skip.
if (CHROMIUM_MISSING !== false && process.env.CI !== undefined) throw new Error(CHROMIUM_MISSING);

/** A headless Chromium with its profile in `profile`, nothing reaching out on its own. */
export function launchChromium (profile: string): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage',
    ],
  });
}
