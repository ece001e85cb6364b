'use strict';
// The first touch of fresh tensor memory, with huge pages (TORCHCAP_HUGE_PAGES=1) and with 4 KiB
// pages only (TORCHCAP_HUGE_PAGES=0): each round, a fresh process per setting (interleaved) loads libtorch,
// then times `Tensor.zeros` of 256 MiB (the allocator's mapping, then every page's first write) and
// the same again once that memory is back in the allocator's cache. Prints both settings' medians
// and ranges, and whether this machine's kernel reports free memory to a host (virtio-balloon's free
// page reporting), which gives freed blocks of 2 MiB and more back to the host, so a later huge page
// can be memory the host must back again; and which setting torchcap takes by default here.
//
//   node bench/first-touch.js [--repeats N]     (REPEATS, default 8)
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { median, machine, defaultPages } = require('./common');

const HERE = path.resolve(__dirname, '..');
const MIB = 256;

const CHILD = `
const { Tensor } = require(require('path').join(process.argv[1], 'dist'));
Tensor.zeros([1]);
const n = ${MIB} * 2 ** 18; // float32 elements
let t = performance.now();
let x = Tensor.zeros([n]);
const first = performance.now() - t;
x.dispose();
t = performance.now();
x = Tensor.zeros([n]);
const again = performance.now() - t;
console.log(JSON.stringify({ first, again }));
`;

/** Whether free page reporting is on, and its order, from sysfs (null where the module is absent). */
function pageReporting() {
  const order = '/sys/module/page_reporting/parameters/page_reporting_order';
  if (!fs.existsSync(order)) return null;
  const balloon = fs.existsSync('/sys/bus/virtio/drivers/virtio_balloon') && fs.readdirSync('/sys/bus/virtio/drivers/virtio_balloon').some((f) => f.startsWith('virtio'));
  return { order: Number(fs.readFileSync(order, 'utf8').trim()), balloon };
}

function firstTouch(repeats = 8, log = (s) => process.stderr.write(s)) {
  const settings = { huge: { TORCHCAP_HUGE_PAGES: '1' }, small: { TORCHCAP_HUGE_PAGES: '0' } };
  const out = { huge: [], small: [] };
  for (let r = 0; r < repeats; r++) {
    for (const [k, env] of Object.entries(settings)) {
      log(`  first touch ${k} (${r + 1}/${repeats})\n`);
      out[k].push(JSON.parse(execFileSync(process.execPath, ['-e', CHILD, HERE], { encoding: 'utf8', env: { ...process.env, ...env } }).trim().split('\n').pop()));
    }
  }
  const stats = (xs) => ({ median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });
  return {
    repeats,
    reporting: pageReporting(),
    default: defaultPages(),
    huge: { first: stats(out.huge.map((x) => x.first)), again: stats(out.huge.map((x) => x.again)) },
    small: { first: stats(out.small.map((x) => x.first)), again: stats(out.small.map((x) => x.again)) },
  };
}

module.exports = { firstTouch };

if (require.main === module) {
  const i = process.argv.indexOf('--repeats');
  const r = firstTouch(Number(i > 0 ? process.argv[i + 1] : process.env.REPEATS || 8));
  const ms = (s) => `median ${s.median.toFixed(0)} ms (${s.min.toFixed(0)}-${s.max.toFixed(0)})`;
  const rep = r.reporting;
  console.log(`first touch of ${MIB} MiB of tensor memory in fresh processes; ${machine()}; ${r.repeats} interleaved rounds`);
  console.log(`free page reporting to a host: ${rep ? `module present, order ${rep.order} (${(4 << rep.order) / 1024} MiB blocks), virtio-balloon ${rep.balloon ? 'bound' : 'not bound'}` : 'no'}`);
  console.log(`torchcap's default here: ${r.default.huge ? 'huge pages' : '4 KiB pages'} (${r.default.why})`);
  console.log(`huge pages (TORCHCAP_HUGE_PAGES=1): first touch ${ms(r.huge.first)}, from the cache ${ms(r.huge.again)}`);
  console.log(`4 KiB pages (TORCHCAP_HUGE_PAGES=0): first touch ${ms(r.small.first)}, from the cache ${ms(r.small.again)}`);
}
