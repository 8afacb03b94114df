import { defineConfig } from 'tsup';

// The published build: ESM with bundled type declarations, one file per entry.
// In the repository the sources are used directly (the `source` export
// condition), so nothing here runs during development or tests.
export default defineConfig({
  entry: { index: 'src/index.ts', node: 'src/node/index.ts' },
  format: 'esm',
  target: 'node20',
  platform: 'neutral',
  dts: true,
  clean: true,
});
