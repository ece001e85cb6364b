/**
 * Conditional tests that say why they skip.
 *
 * A skipped `describeIf` still registers every test of its body under its own name (jest's
 * `describe.skip` collects the body without running a test or a hook), so jest's skip count is the
 * number of tests that did not run. The body must therefore not touch what is missing while it
 * is collected: read files in `beforeAll` or in the tests, not in the body itself.
 *
 * Each skip is recorded with its reason (test/support/skip-log.js), and the summary reporter
 * prints every skipped test's reason at the end of the run; a skipped test without a recorded
 * reason fails the run.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { recordSkip } = require('./skip-log') as { recordSkip: (entry: { file: string; kind: 'describe' | 'test'; name: string; reason: string }) => void };

function testFile(): string {
  return expect.getState().testPath ?? 'unknown file';
}

function announce(kind: 'describe' | 'test', name: string, reason: string): void {
  recordSkip({ file: testFile(), kind, name, reason });
  // eslint-disable-next-line no-console
  console.log(`SKIP ${name}: ${reason}`);
}

export function describeIf(condition: boolean, reason: string, name: string, fn: () => void): void {
  if (condition) {
    describe(name, fn);
  } else {
    announce('describe', name, reason);
    describe.skip(name, fn);
  }
}

export function testIf(condition: boolean, reason: string, name: string, fn: () => unknown, timeout?: number): void {
  if (condition) {
    test(name, fn as jest.ProvidesCallback, timeout);
  } else {
    announce('test', name, reason);
    test.skip(name, fn as jest.ProvidesCallback);
  }
}
