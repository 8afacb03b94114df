import { defineConfig } from 'tsup';

// The published build (see protocol/tsup.config.ts): the one CLI entry.
export default defineConfig({
  entry: { cli: 'src/cli.ts' },
  format: 'esm',
  target: 'node20',
  platform: 'node',
  clean: true,
});
