/**
 * `torchcap demo` end to end on a small run: what it prints, the summary.json that .ci/run checks
 * (metrics, targets and whether each was met, seen and unseen scenes apart), the files it names,
 * and its failures (a bad option in words; a run that fails leaves no summary behind).
 * The demo's own numbers at full size are measured by `npm run demo`, not here.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runDemoCommand } from '../lib/commands/demo';
import { DEMO_TARGETS, pretrainAutocast, type DemoSummary } from '../lib/demo/run';
import { cpuBf16Support } from '../lib/nn/resnet';
import { Captioner } from '../lib/captioner';
import { augmentation, CHANNEL_ORDERS } from '../lib/demo/pretrain';
import { PALETTE, WITHHELD_KINDS, sampleScene } from '../lib/demo/scene-layout';
import { mulberry32 } from '../lib/util/random';

let tmp: string;

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-demo-test-'));
});

afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function capture() {
  const io = { stdout: '', stderr: '', out: (t: string) => void (io.stdout += t), err: (t: string) => void (io.stderr += t) };
  return io;
}

describe('a small demo run', () => {
  let out: string;
  let code: number;
  let io: ReturnType<typeof capture>;
  let summary: DemoSummary;

  beforeAll(async () => {
    out = path.join(tmp, 'run');
    io = capture();
    code = await runDemoCommand({ out, images: 360, heldOut: 60, unseen: 20, epochs: 2, pretrainEpochs: 1, quiet: true }, io);
    summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8')) as DemoSummary;
  }, 600_000);

  test('exits 0 and prints the scores, whether the targets were met, and how to serve the model', () => {
    expect(io.stderr).toBe('');
    expect(code).toBe(0);
    const lines = io.stdout.trimEnd().split('\n');
    expect(lines).toContain(`BLEU-4 ${summary.metrics.Bleu_4.toFixed(4)}`);
    const s = summary.scenes;
    expect(lines).toContain(`exact captions ${s.all.exact.toFixed(4)} (seen ${s.seen.exact.toFixed(4)}, unseen combinations ${s.unseen.exact.toFixed(4)})`);
    const missed = summary.targets.filter((t) => !t.met);
    expect(lines).toContain(missed.length ? `targets MISSED: ${missed.map((t) => `${t.name} ${t.value.toFixed(4)} < ${t.min}`).join('; ')}` : 'all targets met');
    expect(lines[lines.length - 1]).toBe(
      `caption your own image: torchcap serve --encoder ${path.join(out, summary.files.encoder)} --decoder ${path.join(out, summary.files.decoder)} ` +
        `--vocab ${path.join(out, summary.files.vocab)} --image-size 64 --port 8080, then open http://127.0.0.1:8080/`,
    );
  });

  test('summary.json: the metrics, the three targets with their values, and whether each was met', () => {
    expect(summary.version).toBe(1);
    expect(Object.keys(summary.metrics)).toEqual(expect.arrayContaining(['Bleu_1', 'Bleu_4', 'ROUGE_L', 'CIDEr']));
    expect(summary.targets.map((t) => [t.name, t.min])).toEqual([
      ['BLEU-4', DEMO_TARGETS.bleu4],
      ['exact captions, held-out scenes', DEMO_TARGETS.exact],
      ['exact captions, unseen combinations', DEMO_TARGETS.unseenExact],
    ]);
    expect(DEMO_TARGETS).toEqual({ bleu4: 0.8, exact: 0.8, unseenExact: 0.5 });
    expect(summary.targets.map((t) => t.value)).toEqual([summary.metrics.Bleu_4, summary.scenes.all.exact, summary.scenes.unseen.exact]);
    for (const t of summary.targets) expect(t.met).toBe(t.value >= t.min);
    expect(summary.met).toBe(summary.targets.every((t) => t.met));
  });

  test('summary.json reports seen and unseen held-out scenes apart', () => {
    const { all, seen, unseen } = summary.scenes;
    expect([all.scenes, seen.scenes, unseen.scenes]).toEqual([60, 40, 20]);
    expect(all.exact).toBeCloseTo((seen.exact * 40 + unseen.exact * 20) / 60, 10);
    for (const group of [all, seen, unseen]) {
      expect(Object.keys(group.attributes).sort()).toEqual(['color', 'count', 'position', 'shape', 'size']);
      for (const v of [group.exact, ...Object.values(group.attributes)]) {
        expect(v).toBeGreaterThanOrEqual(0);
        expect(v).toBeLessThanOrEqual(1);
      }
    }
    expect(summary.settings).toMatchObject({ heldOut: 60, unseen: 20, size: 64, pretrainEpochs: 1, epochs: 2 });
    // 'auto': bfloat16 where the CPU has it natively, float32 elsewhere, and the summary says which
    expect(summary.settings.pretrainPrecision).toBe(cpuBf16Support().supported ? 'bf16' : 'float32');
    expect((summary.settings.withheld as string[]).length).toBeGreaterThan(0);
  });

  test('the model it names loads and captions a held-out scene; the report it names is written', async () => {
    const f = summary.files;
    expect(fs.readFileSync(path.join(out, f.report), 'utf8')).toMatch(/<h2>Targets<\/h2>/);
    const captioner = await Captioner.load({ encoder: path.join(out, f.encoder), decoder: path.join(out, f.decoder), vocab: path.join(out, f.vocab), imageSize: f.imageSize });
    try {
      const images = fs.readdirSync(path.join(out, 'data', 'images')).sort();
      const caption = await captioner.caption(path.join(out, 'data', 'images', images[images.length - 1]));
      expect(caption).toMatch(/^[a-z]+( [a-z]+)+( \.)?$/); // the captions' final full stop is a word, as in the book's vocabulary
    } finally {
      await captioner.dispose();
    }
  }, 60_000);
});

describe('failures', () => {
  test('a bad option is refused in words, before anything is written', async () => {
    const out = path.join(tmp, 'bad');
    for (const [opts, message] of [
      // the command names its flags; the library (runDemo) its options
      [{ backbone: 'imagenet' }, /for --backbone but received the string "imagenet"/],
      [{ pretrainEpochs: 0 }, /for --pretrain-epochs but received 0/],
      [{ augment: 'yes' }, /for --augment but received the string "yes"/],
      [{ pretrainPrecision: 'fp16' }, /for --pretrain-precision but received the string "fp16"/],
      [{ heldOut: 0 }, /Expected an integer from 1 to 5999 for --held-out but received 0/],
    ] as const) {
      const io = capture();
      expect(await runDemoCommand({ out, ...(opts as object) }, io)).toBe(1);
      expect(io.stderr).toMatch(/^torchcap demo: /);
      expect(io.stderr).toMatch(message);
    }
    expect(fs.existsSync(out)).toBe(false);
  });

  test("pretraining in bf16 where the CPU lacks it is refused with the reason; 'float32' and 'auto' fall back", () => {
    // In a child process with bfloat16 turned off (TORCHCAP_CPU_BF16=0: it then counts as unsupported)
    const script = `const { pretrainAutocast } = require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'demo', 'run'))});
      let refused = null;
      try { pretrainAutocast('bf16'); } catch (e) { refused = e.message; }
      console.log(JSON.stringify({ refused, auto: pretrainAutocast('auto') ?? null, float32: pretrainAutocast('float32') ?? null }));`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { env: { ...process.env, TORCHCAP_CPU_BF16: '0' }, encoding: 'utf8' }));
    expect(out).toEqual({ refused: 'pretraining in bf16 is not possible here: turned off by TORCHCAP_CPU_BF16=0', auto: null, float32: null });
    expect(pretrainAutocast('float32')).toBeUndefined();
    expect(pretrainAutocast('auto')).toBe(cpuBf16Support().supported ? 'bf16' : undefined);
  });

  test('a run that fails leaves no summary.json of an earlier run behind', async () => {
    const out = path.join(tmp, 'stale');
    fs.mkdirSync(out);
    fs.writeFileSync(path.join(out, 'summary.json'), '{"met": true}');
    fs.writeFileSync(path.join(out, 'data'), 'a file where the data folder goes');
    const io = capture();
    expect(await runDemoCommand({ out, images: 50, heldOut: 10, quiet: true }, io)).toBe(1);
    expect(io.stderr).toMatch(/^torchcap demo: .*data/);
    expect(fs.existsSync(path.join(out, 'summary.json'))).toBe(false);
  });
});

describe('the pretraining augmentation', () => {
  const rgb = (hex: string) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));

  test('no mirrored or recoloured view of a training scene looks like a withheld kind; most scenes get recoloured views', () => {
    const rng = mulberry32(7);
    let recoloured = 0;
    let views = 0;
    for (let i = 0; i < 2000; i++) {
      const { objects } = sampleScene(0, i, { objectsPerScene: [1, 3], withheld: WITHHELD_KINDS, show: 'seen' });
      const view = augmentation(objects, WITHHELD_KINDS, rng);
      views++;
      if (view.order === 0) continue;
      recoloured++;
      for (const o of objects) {
        const shown = CHANNEL_ORDERS[view.order].map((c) => rgb(PALETTE[o.color])[c]);
        for (const w of WITHHELD_KINDS.filter((k) => k.shape === o.shape && k.size === o.size)) {
          // Every channel of a withheld kind's colour stays more than 64 levels from the recoloured object, in one channel at least.
          expect(Math.max(...rgb(PALETTE[w.color]).map((v, c) => Math.abs(v - shown[c])))).toBeGreaterThan(64);
        }
      }
    }
    expect(recoloured / views).toBeGreaterThan(0.4);
  });

  test('a large red circle is never turned blue-ish (a large blue circle is withheld)', () => {
    const rng = mulberry32(1);
    const redCircle = [{ color: 'red', shape: 'circle', size: 'large', position: 'middle', cx: 32, cy: 32, radius: 9.6 }] as const;
    const blueish = CHANNEL_ORDERS.findIndex((o) => o.join() === '2,1,0');
    const orders = new Set(Array.from({ length: 500 }, () => augmentation(redCircle, WITHHELD_KINDS, rng).order));
    expect(orders.has(blueish)).toBe(false);
    expect(orders.size).toBeGreaterThan(2);
  });
});
