import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// @peerway/* imports resolve to the sources (the packages' `peerway-source`
// export condition), so tests never need a build and never see a stale one.
const conditions = ['peerway-source', ...defaultServerConditions];

// One runner for the whole repository, in layers:
// unit tests sit beside the code, integration tests use real sockets and
// processes, e2e tests drive real Chromium and the NAT lab.
export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: [
            '*/src/**/*.test.ts',
            'infra/**/*.test.ts',
            'scripts/**/*.test.ts',
            // the web-client modules that run in Node as they are
            'web-client/src/shell/cookies.test.ts',
            'web-client/src/shell/early.test.ts',
            'web-client/src/sw/*.test.ts',
            'web-client/src/shim/*.test.ts',
          ],
          exclude: [
            '**/node_modules/**',
            'web-client/src/*.test.ts',
            'web-client/src/!(sw|shim)/**/!(cookies|early).test.ts',
          ],
          environment: 'node',
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: [
            'signaling-server/test/**/*.test.ts',
            'node-agent/test/**/*.test.ts',
            'cli/test/**/*.test.ts',
          ],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        // The agent's default is `auto` (node-datachannel, werift for clients
        // that need TURN over TCP: node-agent/src/engine/index.ts). werift
        // alone, through the same tunnel suite and browser paths, so neither
        // engine rots; the NAT matrix covers the switch between them.
        test: {
          name: 'werift',
          include: [
            'node-agent/test/tunnel.test.ts',
            'e2e/tests/media.test.ts',
            'e2e/tests/multipage.test.ts',
            'e2e/tests/replicas.test.ts',
          ],
          env: { PEERWAY_ENGINE: 'werift' },
          // after the other projects, so its browsers do not compete with theirs
          sequence: { groupOrder: 1 },
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
      {
        extends: true,
        test: {
          name: 'e2e',
          include: ['e2e/tests/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
