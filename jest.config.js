/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json', diagnostics: false }],
  },
  testTimeout: 120000,
  // Native tensors are process-wide resources: keep test files in separate workers but few of them.
  maxWorkers: 2,
  // A worker that ran native work (libtorch thread pools, worker threads, cached tensor memory)
  // can take longer than jest's default 500 ms to tear down after its last test; it does exit
  // on its own (checked with a 20 s limit), so wait for it instead of killing it.
  workerGracefulExitTimeout: 5000,
  // Skipped tests record their reasons in a file of this run (test/support/skip-log.js).
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
  // A test that ran no assertion fails.
  setupFilesAfterEnv: ['<rootDir>/test/support/assertions.ts'],
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
