// Starts a ResNet forward pass on an executor thread, then ends the process while it runs:
// `exit` calls process.exit(3), `throw` throws an uncaught error. The exit status must be the one
// asked for (3, or 1 for the uncaught error), never a crash in libtorch's teardown.
// Usage: node test/scripts/exit-during-work.js exit|throw
const { Tensor } = require('../../dist');
const { ResNet } = require('../../dist/nn/resnet');

const r = new ResNet(50);
r.forwardAsync(Tensor.randn([2, 3, 160, 160]), { train: false });
r.forwardAsync(Tensor.randn([2, 3, 160, 160]), { train: false }); // queued behind the first: dropped
setTimeout(() => {
  if (process.argv[2] === 'throw') throw new Error('uncaught while a forward pass runs');
  process.exit(3);
}, 20);
