import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/.tap/**', '**/coverage/**', 'bench/results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        performance: 'readonly',
        AbortController: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      'no-console': 'error',
      // Prettier wraps code at 120; this catches what it cannot wrap (strings, comments, SQL).
      'max-len': ['error', { code: 120 }],
    },
  },
  {
    // Contracts are what every process agrees on; they must load in any of them without a framework
    // or a store client (test/contracts/module-graph.test.ts checks the loaded graph as well).
    files: ['packages/shared/src/contracts/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: [
                'fastify',
                'fastify/*',
                '@fastify/*',
                '!@fastify/proxy-addr',
                'ioredis',
                'pg',
                'pg/*',
                'bullmq',
                'pino',
                '../platform/*',
                '../testing/*',
              ],
              allowTypeImports: true,
              message: 'contracts load no framework, store client or platform module at run time',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['scripts/**', '**/test/**', 'bench/**', 'e2e/**', 'checks/**'],
    rules: { 'no-console': 'off' },
  },
);
