// After the run (and after the reporters' onRunComplete): remove the skip records.
const fs = require('fs');
const path = require('path');
const { ENV } = require('./skip-log');

module.exports = async function globalTeardown() {
  const file = process.env[ENV];
  if (file) fs.rmSync(path.dirname(file), { recursive: true, force: true });
};
