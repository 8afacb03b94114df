import { defineConfig } from 'tsup';

// The published build (see protocol/tsup.config.ts). Dependencies stay
// external: tsup leaves everything in package.json's dependencies unbundled.
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    client: 'src/client/index.ts',
    runtime: 'src/runtime/index.ts',
    cli: 'src/cli.ts',
  },
  format: 'esm',
  target: 'node20',
  platform: 'node',
  // types for the library entries; the CLI has none to offer
  dts: {
    entry: {
      index: 'src/index.ts',
      client: 'src/client/index.ts',
      runtime: 'src/runtime/index.ts',
    },
  },
  clean: true,
});
