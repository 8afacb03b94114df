import { defaultClientConditions, defineConfig } from 'vite';
import { resolve } from 'node:path';

// The dashboard, for the gateway origin: its own build, so nothing it pulls
// in ever becomes a shared chunk of the shell bundles that service origins
// load. The server serves dist/dash at /dash/ and dashboard.html for the
// dashboard's routes.
export default defineConfig({
  base: '/dash/',
  resolve: {
    // @peerway/protocol from its sources (its `peerway-source` export condition)
    conditions: ['peerway-source', ...defaultClientConditions],
  },
  build: {
    outDir: 'dist/dash',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    rollupOptions: { input: { dashboard: resolve(import.meta.dirname, 'dashboard.html') } },
  },
});
