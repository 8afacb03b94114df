#!/usr/bin/env node
// `peerway`, the cluster owner's CLI. Installed from npm it runs the built
// code in dist/; in the repository, the TypeScript sources (through
// scripts/dev-register.mjs), so a change needs no build to be tried or tested.
import { existsSync } from 'node:fs';

const source = new URL('../src/cli.ts', import.meta.url);
if (existsSync(source)) {
  await import('../../scripts/dev-register.mjs');
  await import(source.href);
} else {
  await import('../dist/cli.js');
}
