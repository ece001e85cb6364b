// Where skipped tests record their reasons during a run, for the summary reporter to read at the
// end: one JSON line per skip in the file that test/support/global-setup.js names in
// TORCHCAP_SKIP_LOG (jest's workers inherit it).
const fs = require('fs');

const ENV = 'TORCHCAP_SKIP_LOG';

/** Appends { file, kind: 'describe' | 'test', name, reason }. */
function recordSkip(entry) {
  const file = process.env[ENV];
  if (file) fs.appendFileSync(file, `${JSON.stringify(entry)}\n`);
}

/** Every record of this run. */
function readSkips() {
  const file = process.env[ENV];
  if (!file || !fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

module.exports = { ENV, recordSkip, readSkips };
