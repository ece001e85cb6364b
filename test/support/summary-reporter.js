// Prints the closing line CI reads: `N passed, N failed, N skipped`, and the reasons for skips.
class SummaryReporter {
  onRunComplete(_contexts, results) {
    const skips = new Set();
    for (const file of results.testResults) {
      for (const line of (file.console || [])) {
        if (typeof line.message === 'string' && line.message.startsWith('SKIP ')) skips.add(line.message);
      }
    }
    for (const s of skips) process.stdout.write(`${s}\n`);
    const failedSuites = results.numFailedTestSuites - results.testResults.filter((r) => r.numFailingTests > 0).length;
    const failed = results.numFailedTests + Math.max(0, failedSuites);
    process.stdout.write(`${results.numPassedTests} passed, ${failed} failed, ${results.numPendingTests + results.numTodoTests} skipped\n`);
  }
}
module.exports = SummaryReporter;
