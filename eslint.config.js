import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { mailfleetPlugin } from './scripts/lint/plugin.ts';

export default tseslint.config(
  { ignores: ['node_modules/', '.local/', '.cache/', 'charts/', 'docs/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
      },
    },
    plugins: { mailfleet: mailfleetPlugin },
    rules: {
      // Program code: production dependencies only, no test code, no import cycles (scripts/lint/plugin.ts).
      'mailfleet/program-imports': 'error',
      // operator/ and relay/ share code only through contract/, tests included.
      'mailfleet/program-boundaries': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
  },
);
