import { defineConfig } from 'tsup';

// The published build (see protocol/tsup.config.ts). Dependencies stay
// external: tsup leaves everything in package.json's dependencies unbundled.
// The web client's built assets are copied beside it by scripts/copy-web.mjs.
export default defineConfig({
  entry: { index: 'src/index.ts', cli: 'src/cli.ts' },
  format: 'esm',
  target: 'node20',
  platform: 'node',
  dts: { entry: { index: 'src/index.ts' } },
  clean: true,
});
