/**
 * How Peerway's tests and benchmarks start Chromium: Debian's build, headless,
 * as root, on a closed network. The one place for these flags (e2e, the NAT
 * lab and bench/ all launch through here).
 */
import { chromium, type Browser, type LaunchOptions } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

/** Chromium with CHROMIUM_ARGS and `extraArgs` (`executablePath` may wrap it, e.g. in a namespace). */
export function launchChromium(
  extraArgs: string[] = [],
  executablePath = CHROMIUM_PATH,
): Promise<Browser> {
  const options: LaunchOptions = { executablePath, args: [...CHROMIUM_ARGS, ...extraArgs] };
  return chromium.launch(options);
}
