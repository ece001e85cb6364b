/**
 * Every test must assert something: one that returns early or forgets its expectations fails
 * with "Expected at least one assertion to be called". A test that cannot run is skipped with
 * its reason instead (test/support/skip.ts).
 */
beforeEach(() => {
  expect.hasAssertions();
});
