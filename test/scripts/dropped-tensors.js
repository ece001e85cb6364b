// How dropped tensors come back, seen through the bytes torchcap's CPU allocator has handed out
// and not yet had back (cpuCache().liveBytes, MB; it does not free anything by being read): after
// a collection, at the next tensor created, and, when none is created, once the event loop turns
// (the deferred finalizers). Prints one JSON line.
// Usage: node --expose-gc test/scripts/dropped-tensors.js
const { Tensor, cpuCache } = require('../../dist');

const live = () => Math.round((cpuCache().liveBytes ?? NaN) / 2 ** 20);
let held = [];
const drop = () => {
  for (let i = 0; i < 64; i++) held.push(Tensor.zeros([1 << 18])); // 64 x 1 MB, held...
  held = []; // ...then dropped together
};

const out = { installed: cpuCache().installed, start: live() };
drop();
out.dropped = live();
global.gc();
out.collected = live(); // collected, not yet freed: no torchcap code runs inside a collection
Tensor.zeros([1]);
out.nextTensor = live(); // freed by the check that follows a collection

drop();
global.gc();
out.collectedAgain = live();
setImmediate(() => {
  out.eventLoopTurned = live(); // freed by the deferred finalizers
  process.stdout.write(JSON.stringify(out) + '\n');
});
