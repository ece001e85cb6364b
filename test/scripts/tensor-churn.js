// Creates and drops N tensors in one synchronous loop, never disposing them, and prints RSS
// growth in MB. Usage: node test/scripts/tensor-churn.js N ELEMENTS
const { Tensor, memory } = require('../../dist');
const n = Number(process.argv[2] || 100000);
const elements = Number(process.argv[3] || 1024);
const rss = () => process.memoryUsage().rss / 1048576;
for (let i = 0; i < 2000; i++) Tensor.randn([elements]); // warm-up: allocator and JIT settle
const start = rss();
let peak = start;
let checksum = 0;
for (let i = 0; i < n; i++) {
  const t = Tensor.randn([elements]);
  if (i % 1000 === 0) {
    checksum += t.shape[0];
    peak = Math.max(peak, rss());
  }
}
const end = rss();
peak = Math.max(peak, end);
process.stdout.write(JSON.stringify({ n, elements, start, end, peak, peakGrowth: peak - start, live: memory(), checksum }) + '\n');
