// Run under an address-space limit (ulimit -v): prints what each oversized request ended as.
// Usage: bash -c 'ulimit -v KB && node test/scripts/sizes-under-limit.js'
const { Tensor } = require('../../dist');

const outcome = (fn) => {
  try {
    const t = fn();
    return { ok: true, shape: t.shape };
  } catch (e) {
    return { name: e.name, message: e.message };
  }
};
const out = {
  // More bytes than the limit itself: refused before anything is tried.
  overLimit: outcome(() => Tensor.zeros([2 ** 30, 2])),
  // Under the limit, but more than the address space the process has left: libtorch's allocation
  // fails and arrives as an ordinary error.
  overWhatIsLeft: outcome(() => Tensor.zeros([Number(process.argv[2])])),
  // The process carries on.
  after: outcome(() => Tensor.ones([3]).sum()),
};
process.stdout.write(JSON.stringify(out) + '\n');
