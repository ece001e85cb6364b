/**
 * The public API under fuzzing: 20 processes, each making 2,000 seeded random and mostly wrong
 * calls (scripts/fuzz-child.js: tensor methods with wrong shapes, dtypes, dims, disposed tensors,
 * strings, NaN and huge sizes; modules with bad sizes and inputs; packPaddedSequence with bad
 * lengths; noGrad; async calls; a Captioner fed garbage buffers), each under a 4 GB address-space
 * limit so that a huge tensor must end as a JS error rather than as the OOM killer. Every process
 * must end normally, and every value thrown must be an Error with a message.
 *
 * The base seed is random (set TORCHCAP_FUZZ_SEED to fix it); a failure prints the seed of the
 * process, its last calls and the command that replays it. `npm run fuzz -- --processes 200` runs
 * more.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';

const PROCESSES = 20;
const CALLS = 2000;

test(`${PROCESSES} processes x ${CALLS} random calls of the public API all end normally`, () => {
  const args = [path.join(__dirname, '..', 'scripts', 'fuzz.js'), '--processes', String(PROCESSES), '--calls', String(CALLS)];
  if (process.env.TORCHCAP_FUZZ_SEED) args.push('--seed', process.env.TORCHCAP_FUZZ_SEED);
  const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 590000 });
  const out = `${r.stdout}${r.stderr}`;
  // eslint-disable-next-line no-console
  console.log(out.split('\n').filter((l) => l.startsWith('fuzz:') || l.startsWith('thrown:')).join('\n'));
  // The whole report (seeds, last calls, stderr of any process that failed) when it fails.
  expect({ status: r.status, signal: r.signal, report: r.status === 0 ? '' : out }).toEqual({ status: 0, signal: null, report: '' });
  expect(out).toMatch(new RegExp(`fuzz: ${PROCESSES} of ${PROCESSES} processes ended normally, 0 failed`));
}, 600000);
