// typescript-eslint's strict type-checked preset over the product, its tests,
// the benchmark and the scripts. Formatting is Prettier's (see .prettierrc.json).
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'dist-bench/**',
      'dist-dev/**',
      'dist-scripts/**',
      'node_modules/**',
      'test-artifacts/**',
      'src/vertex/operations.generated.ts',
    ],
  },
  eslint.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: true,
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Numbers print unambiguously in messages, URLs and ports; the rule's docs list allowNumber as the common relaxation.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      // `(x) => void-call()` shorthand callbacks (hooks, timers, event handlers) read clearly; the rule's documented option.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // A leading underscore marks a deliberately unused binding (an omitted rest sibling, a required callback parameter).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Late-bound references read by closures created before the assignment (the rule's documented option for this case).
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // `this: void` is unbound-method's documented fix for interface methods that are passed around detached.
      '@typescript-eslint/no-invalid-void-type': ['error', { allowAsThisParameter: true }],
      // Prettier's printWidth, enforced where Prettier cannot wrap (strings, comments); URLs and regex literals cannot be split.
      'max-len': ['error', { code: 140, ignoreUrls: true, ignoreRegExpLiterals: true }],
    },
  },
  {
    // Tests only. Non-null assertions: a test indexes results it has just asserted on, and a wrong guess fails the test loudly.
    // Unnecessary conditions: `let world: World` is assigned in beforeAll, and afterAll's `world?.close()` must still run when
    // beforeAll threw (the variable is then undefined at runtime, which the declared type cannot express).
    // Unsafe assignment: vitest's asymmetric matchers (expect.any, expect.stringContaining, ...) are typed `any`.
    // Dynamic delete: tests strip fixed key lists from expected records.
    files: ['test/**/*.ts', '**/*.test.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unnecessary-condition': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-dynamic-delete': 'off',
      // Test doubles implement async interfaces with synchronous bodies.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // The stand-ins are test doubles (run by `dev` and the tests): their regex capture groups are guaranteed by the pattern.
    files: ['dev/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // These two walk parsed YAML manifests (typed `any` by the parser); the shapes they read are what they assert.
    files: ['test/integration/helm-chart.test.ts', 'test/integration/deploy.test.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  {
    // @kubernetes/client-node's models (V1TokenReview, V1ObjectMeta, ...) are plain data classes with no behaviour; the
    // client serialises object literals the same way, and its own examples pass literals.
    files: [
      'src/authn/token-review.ts',
      'src/authn/token-review.test.ts',
      'src/identity/namespace-watch.ts',
      'src/identity/permissions.ts',
      'src/identity/uid-revocation.ts',
      'test/standins/kube-api.test.ts',
    ],
    rules: { '@typescript-eslint/no-unsafe-class-instance-assignment': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Plain Node scripts (no type information): declare the Node globals they use.
    files: ['**/*.mjs'],
    languageOptions: {
      globals: { console: 'readonly', process: 'readonly', URL: 'readonly', setImmediate: 'readonly', setTimeout: 'readonly' },
    },
  },
);
