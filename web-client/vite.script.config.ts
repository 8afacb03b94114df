import { defaultClientConditions, defineConfig } from 'vite';
import { resolve } from 'node:path';

// The service worker (`--mode sw`) and the in-page shim (`--mode shim`),
// each a single self-contained file: both load as classic scripts, which
// cannot import chunks, so each is its own build and shares code with the
// other (the protocol's Response builder) by bundling it, not by a chunk.
const ENTRIES: Record<string, string> = { sw: 'src/sw/sw.ts', shim: 'src/shim/shim.ts' };

export default defineConfig(({ mode }) => {
  const entry = ENTRIES[mode];
  if (!entry) throw new Error(`vite.script.config.ts: --mode sw or --mode shim, not ${mode}`);
  return {
    base: '/__peerway/',
    resolve: { conditions: ['peerway-source', ...defaultClientConditions] },
    build: {
      outDir: 'dist',
      emptyOutDir: false, // beside the shell's build
      target: 'es2022',
      sourcemap: true,
      rollupOptions: {
        input: { [mode]: resolve(import.meta.dirname, entry) },
        output: { entryFileNames: '[name].js', inlineDynamicImports: true },
      },
    },
  };
});
