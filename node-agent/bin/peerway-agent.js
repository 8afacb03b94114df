#!/usr/bin/env node
// Runs the TypeScript sources through tsx, resolved from this package.
import { register } from 'tsx/esm/api';
register();
await import('../src/cli.ts');
