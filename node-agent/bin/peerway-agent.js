#!/usr/bin/env node
// Installed from npm, this runs the built code in dist/. In the repository,
// where src/ sits beside it, it runs the TypeScript sources (through
// scripts/dev-register.mjs), so a change needs no build to be tried or tested.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
if (existsSync(source)) {
  await import('../../scripts/dev-register.mjs');
  await import(source.href);
} else {
  await import('../dist/cli.js');
}
