import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      'bench/results/**',
      'e2e/artifacts/**',
      '.peerway-data/**',
      // the built web client, copied here when the server package is packed
      'signaling-server/web/**',
    ],
  },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      'no-console': ['error', { allow: ['warn', 'error'] }],
    },
  },
  {
    // CLIs and scripts talk to a human on stdout.
    files: [
      '**/cli.ts',
      '**/bin/**',
      'scripts/**',
      'bench/**',
      '**/*.test.ts',
      '**/test/**',
      'e2e/**',
      'infra/**',
    ],
    rules: {
      'no-console': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-expressions': 'off',
    },
  },
);
