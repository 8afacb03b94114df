import { defineConfig } from 'vitest/config';

// One runner for the whole repository, in layers (STYLE.md §9):
// unit tests sit beside the code, integration tests use real sockets and
// processes, e2e tests drive real Chromium and the NAT lab.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['*/src/**/*.test.ts', 'infra/**/*.test.ts'],
          exclude: ['**/node_modules/**', 'web-client/**'],
          environment: 'node',
        },
      },
      {
        test: {
          name: 'integration',
          include: ['signaling-server/test/**/*.test.ts', 'node-agent/test/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
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
