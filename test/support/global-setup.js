// Before any test file runs: a fresh file for the skip records (test/support/skip-log.js), and the
// thread count of every Python reference a test starts.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ENV } = require('./skip-log');
const { defaultThreads } = require('../../lib/core/runtime'); // TypeScript, which jest compiles for its setup too

module.exports = async function globalSetup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-skips-'));
  process.env[ENV] = path.join(dir, 'skips.jsonl');
  fs.writeFileSync(process.env[ENV], '');
  // PyTorch picks its own thread count (Debian's, on a 2-CPU machine here: one), torchcap uses every
  // CPU. A reduction split over another number of threads sums in another order (a batch norm's
  // statistics differ in the last bit), so the tests' Python references, which inherit this
  // variable, use torchcap's count: the same arithmetic where torchcap does what PyTorch does.
  process.env.OMP_NUM_THREADS = String(defaultThreads());
};
