// Prints every skipped test's reason and the closing line CI reads: `N passed, N failed, N skipped`.
//
// Skips are counted per test (a skipped describe counts each of its tests), and each one must have
// a reason recorded by test/support/skip.ts: a test skipped any other way (test.skip, describe.skip,
// `cond ? test : test.skip`) is reported as skipped without a reason, counted as failed, and fails
// the run.
const path = require('path');
const { readSkips } = require('./skip-log');

const NOT_RUN = new Set(['pending', 'skipped', 'disabled', 'todo']);

class SummaryReporter {
  constructor(globalConfig) {
    this.rootDir = globalConfig.rootDir;
    this.error = undefined;
  }

  onRunComplete(_contexts, results) {
    const records = readSkips();
    const groups = new Map(); // "file › name" -> { reason, tests }
    const unexplained = [];
    let skipped = 0;
    for (const file of results.testResults) {
      const rel = path.relative(this.rootDir, file.testFilePath);
      const mine = records.filter((r) => r.file === file.testFilePath);
      for (const t of file.testResults) {
        if (!NOT_RUN.has(t.status)) continue;
        let record = mine.find((r) => r.kind === 'test' && r.name === t.title);
        for (let i = t.ancestorTitles.length - 1; !record && i >= 0; i--) {
          record = mine.find((r) => r.kind === 'describe' && r.name === t.ancestorTitles[i]);
        }
        if (!record) {
          unexplained.push(`${rel} › ${[...t.ancestorTitles, t.title].join(' › ')}`);
          continue;
        }
        skipped++;
        const key = `${rel} › ${record.name}`;
        const g = groups.get(key) ?? { reason: record.reason, tests: 0 };
        g.tests++;
        groups.set(key, g);
      }
    }
    for (const [key, g] of groups) process.stdout.write(`SKIP ${key} (${g.tests} ${g.tests === 1 ? 'test' : 'tests'}): ${g.reason}\n`);
    for (const u of unexplained) process.stdout.write(`SKIPPED WITHOUT A REASON (counted as failed): ${u}\n`);
    if (unexplained.length) this.error = new Error(`${unexplained.length} tests were skipped without a reason (use test/support/skip.ts)`);
    // Suites that failed to run at all (a syntax error, a throw while collecting) count once each.
    const failedSuites = results.numFailedTestSuites - results.testResults.filter((r) => r.numFailingTests > 0).length;
    const failed = results.numFailedTests + Math.max(0, failedSuites) + unexplained.length;
    process.stdout.write(`${results.numPassedTests} passed, ${failed} failed, ${skipped} skipped\n`);
  }

  getLastError() {
    return this.error;
  }
}
module.exports = SummaryReporter;
