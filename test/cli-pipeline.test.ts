/**
 * The book's whole pipeline through the command line on the 13 real COCO photos of
 * test/fixtures/coco-photos:
 * resize -> vocab -> train (ResNet-18, random init, 2 epochs) killed with SIGKILL after its first
 * checkpoint -> train --resume -> caption. Training is deterministic for a seed, so the resumed
 * run's log lines, metrics and final weights equal those of a run that was never interrupted.
 * Once at 128/112 pixels (with the uninterrupted run to compare), once at the book's 256/224.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FIXTURE_CAPTIONS, FIXTURE_IMAGES } from './support/data';
import { describeIf } from './support/skip';
import { runCli, startCli, lines, cliBuilt, NO_CLI, type CliResult } from './support/cli';

const CAPTIONS = FIXTURE_CAPTIONS;

let root: string;
let images: string;
let vocab: string;
let words: string;

function ok(r: CliResult, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
}

/** 65 captions at batch 5: 13 steps an epoch, a checkpoint every 5 steps, a log line every step. */
function trainArgs(out: string, size: { resize: number; crop: number }): string[] {
  return [
    'train',
    '--images', images,
    '--captions', CAPTIONS,
    '--vocab', vocab,
    '--out', out,
    '--backbone', 'resnet18',
    '--epochs', '2',
    '--batch-size', '5',
    '--save-every', '5',
    '--log-every', '1',
    '--resize', String(size.resize),
    '--crop', String(size.crop),
    '--quiet',
  ];
}

const epochLines = (text: string) => lines(text).filter((l) => l.startsWith('Epoch ['));

/** Starts training, waits until step 6 of epoch 0 is logged (the checkpoint after step 5 is then complete), and kills it. */
async function trainAndKill(out: string, size: { resize: number; crop: number }): Promise<string> {
  const run = startCli(trainArgs(out, size));
  await run.waitFor(/Epoch \[0\/2\], Step \[6\/13\]/);
  run.child.kill('SIGKILL');
  const r = await run.result;
  expect(r.signal).toBe('SIGKILL');
  return r.stdout;
}

/** [globalStep, loss] of each step in metrics.jsonl. */
function stepMetrics(out: string): [number, number][] {
  return lines(fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8'))
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === 'step')
    .map((e) => [e.globalStep, e.loss]);
}

/** `caption --json` on some photos: one valid JSON object a line, a caption without special tokens each. */
async function caption(photos: string[], ckpt: string, vocabFile: string, extra: string[] = []): Promise<string[]> {
  const r = await runCli(['caption', ...photos, '--encoder', path.join(ckpt, 'encoder-2-13.ckpt'), '--decoder', path.join(ckpt, 'decoder-2-13.ckpt'), '--vocab', vocabFile, '--json', ...extra]);
  ok(r, 'caption');
  expect(r.stderr).toBe('');
  const objects = lines(r.stdout).map((l) => JSON.parse(l));
  expect(objects.map((o) => o.image)).toEqual(photos);
  for (const o of objects) {
    expect(Object.keys(o).sort()).toEqual(['caption', 'image']);
    expect(typeof o.caption).toBe('string');
    expect(o.caption.trim().length).toBeGreaterThan(0);
    expect(o.caption).not.toMatch(/<start>|<end>|<pad>/);
  }
  return objects.map((o) => o.caption);
}

describeIf(cliBuilt, NO_CLI, 'the pipeline on 13 COCO photos through the CLI', () => {
  let photos: string[];
  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-e2e-'));
    images = path.join(root, 'resized');
    vocab = path.join(root, 'vocab.json');
    words = path.join(root, 'words.json');
    const resize = await runCli(['resize', '--input', FIXTURE_IMAGES, '--output', images, '--quiet']);
    ok(resize, 'resize');
    expect(resize.stdout).toMatch(/resized 13, already done 0, failed 0 of 13 files/);
    const v = await runCli(['vocab', '--captions', CAPTIONS, '--threshold', '1', '--out', vocab]);
    ok(v, 'vocab');
    expect(v.stdout).toMatch(/^\d+ words \(threshold 1, 65 captions\) written to /);
    const json = JSON.parse(fs.readFileSync(vocab, 'utf8'));
    expect(json.words.slice(0, 4)).toEqual(['<pad>', '<start>', '<end>', '<unk>']);
    fs.writeFileSync(words, JSON.stringify(json.words));
    photos = fs.readdirSync(images).filter((f) => !f.startsWith('.')).sort().slice(0, 4).map((f) => path.join(images, f));
  }, 120000);
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('128/112: killed after its first checkpoint and resumed, it logs, records and ends exactly as an uninterrupted run', async () => {
    const size = { resize: 128, crop: 112 };
    const whole = await runCli(trainArgs(path.join(root, 'whole'), size));
    ok(whole, 'uninterrupted train');
    const wholeLines = epochLines(whole.stdout);
    expect(wholeLines).toHaveLength(26);
    expect(wholeLines[0]).toMatch(/^Epoch \[0\/2\], Step \[0\/13\], Loss: \d+\.\d{4}, Perplexity: \d+\.\d{4}$/);
    expect(whole.stdout).toMatch(/done: 26 steps, last loss \d+\.\d{4}, 0 images skipped/);

    const out = path.join(root, 'killed');
    const before = epochLines(await trainAndKill(out, size));
    expect(before.slice(0, 7)).toEqual(wholeLines.slice(0, 7));
    expect(JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8')).encoder).toBe('encoder-1-5.ckpt');

    const resumed = await runCli([...trainArgs(out, size), '--resume']);
    ok(resumed, 'train --resume');
    const all = lines(resumed.stdout);
    expect(all[0]).toBe('Resumed from encoder-1-5.ckpt, decoder-1-5.ckpt, training-1-5.ckpt (epoch 0, step 4)');
    // the steps after the checkpoint, exactly as the uninterrupted run logged them
    expect(epochLines(resumed.stdout)).toEqual(wholeLines.slice(5));
    expect(resumed.stdout).toMatch(/done: 26 steps, /);
    expect(resumed.stdout.match(/last loss \S+/)![0]).toBe(whole.stdout.match(/last loss \S+/)![0]);
    // the same final weights and optimizer state, byte for byte
    for (const f of ['encoder-2-13.ckpt', 'decoder-2-13.ckpt', 'training-2-13.ckpt']) {
      expect([f, fs.readFileSync(path.join(out, f)).equals(fs.readFileSync(path.join(root, 'whole', f)))]).toEqual([f, true]);
    }
    // metrics.jsonl holds each step once (the killed run's steps after the checkpoint are dropped)
    expect(stepMetrics(out)).toEqual(stepMetrics(path.join(root, 'whole')));
    expect(fs.readdirSync(out).filter((n) => n.endsWith('.tmp'))).toEqual([]);

    // caption with the final checkpoint: torchcap vocabulary JSON, then a JSON array of words
    const a = await caption(photos, out, vocab);
    const b = await caption(photos, out, words);
    expect(b).toEqual(a);
    await caption(photos.slice(0, 2), out, vocab, ['--beam', '3']);
  }, 400000);

  test("the book's 256/224: train killed after its first checkpoint -> --resume -> caption", async () => {
    const size = { resize: 256, crop: 224 };
    const out = path.join(root, 'book');
    const before = epochLines(await trainAndKill(out, size));
    expect(before.length).toBeGreaterThanOrEqual(7);
    const resumed = await runCli([...trainArgs(out, size), '--resume']);
    ok(resumed, 'train --resume at 224');
    expect(lines(resumed.stdout)[0]).toMatch(/^Resumed from encoder-1-5\.ckpt/);
    const after = epochLines(resumed.stdout);
    expect(after).toHaveLength(21);
    // the resumed steps 5 and 6 repeat what the killed run logged for them
    expect(after.slice(0, 2)).toEqual(before.slice(5, 7));
    expect(resumed.stdout).toMatch(/done: 26 steps, /);
    const losses = after.map((l) => Number(/Loss: (\S+),/.exec(l)![1]));
    const first = Number(/Loss: (\S+),/.exec(before[0])![1]);
    // ln(V) at initialization, and learning something in 2 epochs
    const V = JSON.parse(fs.readFileSync(vocab, 'utf8')).words.length;
    expect(Math.abs(first - Math.log(V))).toBeLessThan(0.5);
    expect(Math.min(...losses.slice(-5))).toBeLessThan(first - 1);
    await caption(photos, out, vocab);
  }, 400000);
});
