#!/usr/bin/env node
// `peerway`, the cluster owner's CLI (src/peerway/cli.ts). Installed from npm
// it runs the built code in dist/; in the repository, the TypeScript sources
// (through scripts/dev-register.mjs), as bin/peerway-agent.js does.
import { existsSync } from 'node:fs';

const source = new URL('../src/peerway/cli.ts', import.meta.url);
if (existsSync(source)) {
  await import('../../scripts/dev-register.mjs');
  await import(source.href);
} else {
  await import('../dist/peerway.js');
}
