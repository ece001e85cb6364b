/**
 * The fast path's 3x3 convolutions as oneDNN's Winograd convolutions (float32, stride 1, no
 * residual, at least 784 output pixels): which convolutions take it (oneDNN's own log), that the
 * features stay those of the plain eval forward, and the two ways it is turned off
 * (TORCHCAP_WINOGRAD=0, a CPU without oneDNN's Winograd kernels). Each case runs in its own
 * process: the switch is read once, and oneDNN logs to stdout.
 */
import * as path from 'path';
import { execFileSync } from 'child_process';
import { blockedTrainSupport } from '../lib/nn/resnet';
import { describeIf } from './support/skip';

// Winograd runs where the fused oneDNN convolutions do: the build with libtorch's oneDNN wrapper on
// an AVX-512 CPU (the same conditions as book mode's blocked path).
const ONEDNN = blockedTrainSupport();

interface Run {
  winograd: { batch4: number; batch1: number };
  direct: number;
  gap: { batch4: number; batch1: number };
  features: number[];
}

// A seeded ResNet-50 on the fast path at batch 4 (layer1's 16x16 outputs: 1,024 pixels, Winograd)
// and batch 1 (256 pixels: direct), against the plain eval forward of the same weights.
function run(env: Record<string, string>): Run {
  const script = `
    const { Tensor, noGrad, manualSeed } = require(${JSON.stringify(path.resolve(__dirname, '../dist'))});
    const { ResNet } = require(${JSON.stringify(path.resolve(__dirname, '../dist/nn/resnet'))});
    manualSeed(7);
    const r = new ResNet(50);
    r.prepareFast();
    const gap = (a, b) => a.sub(b).abs().max().item() / b.abs().max().item();
    const out = {};
    for (const batch of [4, 1]) {
      const x = Tensor.randn([batch, 3, 64, 64]);
      const plain = noGrad(() => r.forward(x, { train: false }));
      console.log('TORCHCAP-MARK-' + batch);
      const fast = noGrad(() => r.forward(x, { train: false, fast: true }));
      console.log('TORCHCAP-END-' + batch);
      out['gap' + batch] = gap(fast, plain);
      if (batch === 4) out.features = Array.from(fast.toTypedArray());
    }
    console.log('TORCHCAP-RESULT ' + JSON.stringify(out));`;
  const log = execFileSync(process.execPath, ['-e', script], { env: { ...process.env, ONEDNN_VERBOSE: '1', DNNL_VERBOSE: '1', ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  const between = (batch: number): string[] => log.slice(log.indexOf(`TORCHCAP-MARK-${batch}`), log.indexOf(`TORCHCAP-END-${batch}`)).split('\n');
  const convolutions = (lines: string[], impl: RegExp): number => lines.filter((l) => /,exec,cpu,convolution,/.test(l) && impl.test(l)).length;
  const result = JSON.parse(log.slice(log.indexOf('TORCHCAP-RESULT ') + 'TORCHCAP-RESULT '.length).split('\n')[0]);
  return {
    winograd: { batch4: convolutions(between(4), /wino/), batch1: convolutions(between(1), /wino/) },
    direct: convolutions(between(4), /^(?!.*wino)/),
    gap: { batch4: result.gap4, batch1: result.gap1 },
    features: result.features,
  };
}

describeIf(ONEDNN.supported, `the fast path's fused oneDNN convolutions do not run here: ${ONEDNN.reason}`, "the fast path's Winograd convolutions", () => {
  let on: Run;
  beforeAll(() => {
    on = run({});
  });

  test("layer1's three 3x3 convolutions run as Winograd at batch 4 and none at batch 1; the features are the plain forward's", () => {
    expect(on.winograd.batch4).toBe(3); // ResNet-50's layer1: 16x16 outputs x 4 images; layer2 on are smaller
    expect(on.winograd.batch1).toBe(0);
    expect(on.direct).toBe(53 - 3); // the other convolutions of ResNet-50 stay direct
    expect(on.gap.batch4).toBeLessThan(1e-5);
    expect(on.gap.batch1).toBeLessThan(1e-5);
  });

  test('TORCHCAP_WINOGRAD=0 keeps every convolution direct: the same features to float32 rounding, not bit for bit', () => {
    const off = run({ TORCHCAP_WINOGRAD: '0' });
    expect(off.winograd.batch4).toBe(0);
    expect(off.direct).toBe(53);
    expect(off.gap.batch4).toBeLessThan(1e-5);
    const scale = Math.max(...off.features.map(Math.abs));
    const diff = Math.max(...off.features.map((v, i) => Math.abs(v - on.features[i])));
    expect(diff / scale).toBeLessThan(1e-5);
    expect(diff).toBeGreaterThan(0); // a different algorithm, not the same kernels under another name
  });

  test("a CPU without oneDNN's Winograd kernels (oneDNN held to AVX2) runs the same forward directly, no error", () => {
    const avx2 = run({ ONEDNN_MAX_CPU_ISA: 'AVX2', DNNL_MAX_CPU_ISA: 'AVX2' });
    expect(avx2.winograd.batch4).toBe(0);
    expect(avx2.direct).toBe(53);
    expect(avx2.gap.batch4).toBeLessThan(1e-5);
    expect(avx2.gap.batch1).toBeLessThan(1e-5);
  });
});
