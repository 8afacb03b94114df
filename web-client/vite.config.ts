import { defaultClientConditions, defineConfig } from 'vite';
import { resolve } from 'node:path';

// Bundles for service origins: the shell page and its first script (which
// the server inlines). The service worker and the in-page shim are built
// each on its own by vite.script.config.ts: they load as classic scripts,
// so neither may import a chunk. Fixed file names: the server serves them
// at /__peerway/.
export default defineConfig({
  base: '/__peerway/',
  resolve: {
    // @peerway/protocol from its sources (its `peerway-source` export condition)
    conditions: ['peerway-source', ...defaultClientConditions],
    // tough-cookie's public suffix list, not needed by a one-origin jar
    // (see the file): the cookie chunk goes from 298 KB to ~40 KB.
    alias: { tldts: resolve(import.meta.dirname, 'src/shell/registrable-domain.ts') },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rollupOptions: {
      input: {
        shell: resolve(import.meta.dirname, 'shell.html'),
        // inlined into the shell page by the server, not served
        early: resolve(import.meta.dirname, 'src/shell/early.ts'),
      },
      output: {
        entryFileNames: '[name].js',
        chunkFileNames: 'chunks/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
});
