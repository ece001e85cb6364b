// Before any test file runs: a fresh file for the skip records (test/support/skip-log.js).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { ENV } = require('./skip-log');

module.exports = async function globalSetup() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-skips-'));
  process.env[ENV] = path.join(dir, 'skips.jsonl');
  fs.writeFileSync(process.env[ENV], '');
};
