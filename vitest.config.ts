import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // Every file makes its own databases from the migrated templates, so files can run
    // in parallel; there are only two cores.
    maxWorkers: 2,
    // Memory tests (the streamed export) collect garbage before they sample.
    execArgv: ['--expose-gc'],
  },
});
