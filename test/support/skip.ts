/**
 * Conditional tests that say why they skip. The reason is printed with a `SKIP ` prefix and
 * repeated by the summary reporter at the end of the run.
 */
export function describeIf(condition: boolean, reason: string, name: string, fn: () => void): void {
  if (condition) {
    describe(name, fn);
  } else {
    // eslint-disable-next-line no-console
    console.log(`SKIP ${name}: ${reason}`);
    // The body is not run at all: it may read what is missing.
    describe(name, () => test.skip(reason, () => undefined));
  }
}

export function testIf(condition: boolean, reason: string, name: string, fn: () => unknown, timeout?: number): void {
  if (condition) {
    test(name, fn as jest.ProvidesCallback, timeout);
  } else {
    // eslint-disable-next-line no-console
    console.log(`SKIP ${name}: ${reason}`);
    test.skip(name, fn as jest.ProvidesCallback);
  }
}
