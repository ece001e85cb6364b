/**
 * From a trained model to its COCO scores in one command, on the 50 shared COCO photos: train a
 * few steps (validating during training), then `torchcap evaluate --images`. Its scores equal those
 * of the independent path (`caption --format coco` on the same images, then `evaluate --results`);
 * images missing from the folder or unreadable are named and left out of the scores, and the
 * output says how many were scored; validation during training scores the same images (the first
 * N by id) with the same numbers. Flag errors are checked before any model loads.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { sharedData, sharedDataPresent, SHARED_DATA } from './support/data';
import { describeIf } from './support/skip';
import { runCli, lines, cliBuilt, NO_CLI, type CliResult } from './support/cli';
import { runEvaluate } from '../lib/commands/evaluate';
import { runCaption } from '../lib/commands/caption';
import type { CommandIO } from '../lib/commands/io';

const MINI = sharedData('coco-val2017-mini');
const CAPTIONS = path.join(MINI, 'captions.json');
const PHOTOS = path.join(MINI, 'images');
const present = sharedDataPresent && fs.existsSync(CAPTIONS);

const METRICS = ['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'ROUGE_L', 'CIDEr'] as const;

function ok(r: CliResult, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited with ${r.code ?? r.signal}:\n${r.stdout}\n${r.stderr}`);
}

function capture(): CommandIO & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (t) => { out += t; }, err: (t) => { err += t; }, stdout: () => out, stderr: () => err };
}

describeIf(present && cliBuilt, present ? NO_CLI : `no COCO mini set in ${SHARED_DATA}`, 'a trained model scored in one command on 50 COCO photos', () => {
  let root: string;
  let models: { encoder: string; decoder: string; vocab: string };
  let dir: string;
  /** The first 30 images by id, as files of `dir`. */
  let first30: { id: number; file: string }[];
  let missing: string[];
  let unreadable: string;
  let trainLog: string;

  beforeAll(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-evaluate-model-'));
    const out = path.join(root, 'models');
    // ResNet-18, cached features, the folded backbone (what `caption` and `evaluate` load): 6 epochs
    // of 16 steps (enough to tell the photos apart), validated on the first 12 images by id every
    // 40 steps and at the end of each epoch.
    const train = await runCli([
      'train', '--images', PHOTOS, '--captions', CAPTIONS, '--out', out, '--threshold', '1',
      '--backbone', 'resnet18', '--backbone-mode', 'fast', '--cache-features', '--epochs', '6', '--batch-size', '16', '--lr', '0.01',
      '--eval-every', '40', '--val-captions', CAPTIONS, '--val-limit', '12', '--quiet',
    ]);
    ok(train, 'train');
    trainLog = train.stdout;
    const latest = JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8'));
    models = { encoder: path.join(out, latest.encoder), decoder: path.join(out, latest.decoder), vocab: path.join(out, 'vocab.json') };

    // The evaluation folder: all photos but two of the first 30, and one of them unreadable.
    const coco = JSON.parse(fs.readFileSync(CAPTIONS, 'utf8'));
    const byId = (coco.images as { id: number; file_name: string }[]).sort((a, b) => a.id - b.id);
    first30 = byId.slice(0, 30).map((i) => ({ id: i.id, file: i.file_name }));
    dir = path.join(root, 'val');
    fs.mkdirSync(dir);
    missing = [first30[3].file, first30[17].file];
    unreadable = first30[9].file;
    for (const img of byId) if (!missing.includes(img.file_name)) fs.copyFileSync(path.join(PHOTOS, img.file_name), path.join(dir, img.file_name));
    fs.writeFileSync(path.join(dir, unreadable), 'not a JPEG at all');
  }, 600000);
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const modelArgs = () => ['--encoder', models.encoder, '--decoder', models.decoder, '--vocab', models.vocab];

  test('evaluate --images scores as caption --format coco + evaluate --results; missing and unreadable images are named and left out', async () => {
    const resultsOut = path.join(root, 'results.json');
    const perImage = path.join(root, 'per-image.json');
    const report = path.join(root, 'report', 'report.html');
    fs.mkdirSync(path.dirname(report));
    const one = await runCli(['evaluate', ...modelArgs(), '--references', CAPTIONS, '--images', dir, '--limit', '30', '--results-out', resultsOut, '--per-image', perImage, '--report', report, '--json']);
    ok(one, 'evaluate --images');
    const scores = JSON.parse(one.stdout);
    expect(scores.images).toBe(27);
    expect(scores.scored).toBe(27);
    const notScored = scores.notScored as { image_id: number; image: string; reason: string }[];
    expect(notScored.map((n) => path.basename(n.image)).sort()).toEqual([...missing, unreadable].sort());
    for (const m of missing) expect(notScored.find((n) => n.image.endsWith(m))!.reason).toMatch(/file not found$/);
    expect(notScored.find((n) => n.image.endsWith(unreadable))!.reason).toMatch(/not an image|cannot decode/);
    for (const name of [...missing, unreadable]) expect(one.stderr).toContain(`torchcap evaluate: not scored: ${path.join(dir, name)}: `);
    // The progress display (stderr is not a terminal here: a plain line at the end).
    expect(one.stderr).toMatch(/^evaluate: 30\/30 \(100\.0%\) in \d+/m);

    // The independent path: caption the same 30 files (two of them absent), then score the output.
    const paths = first30.map((i) => path.join(dir, i.file));
    const cap = await runCli(['caption', ...paths, ...modelArgs(), '--format', 'coco', '--references', CAPTIONS]);
    expect(cap.code).toBe(1); // three images could not be read
    expect(lines(cap.stderr)).toHaveLength(3);
    const captioned = JSON.parse(cap.stdout) as { image_id: number; caption: string }[];
    expect(captioned).toHaveLength(27);
    const resultsFile = path.join(root, 'caption-results.json');
    fs.writeFileSync(resultsFile, cap.stdout);
    const two = await runCli(['evaluate', '--references', CAPTIONS, '--results', resultsFile, '--json']);
    ok(two, 'evaluate --results');
    const independent = JSON.parse(two.stdout);
    for (const m of METRICS) expect(scores[m]).toBe(independent[m]);
    expect(scores.bleu).toEqual(independent.bleu);
    expect(scores.images).toBe(independent.images);
    // The same captions, written in COCO's results format by both.
    expect(fs.readFileSync(resultsOut, 'utf8')).toBe(cap.stdout);
    const rows = JSON.parse(fs.readFileSync(perImage, 'utf8')) as { image_id: number; caption: string; CIDEr: number }[];
    expect(rows.map((r) => `${r.image_id} ${r.caption}`).sort()).toEqual(captioned.map((r) => `${r.image_id} ${r.caption}`).sort());
    // The models learned something: not every caption is the same.
    expect(new Set(captioned.map((c) => c.caption)).size).toBeGreaterThan(1);

    const html = fs.readFileSync(report, 'utf8');
    expect(html).toContain('<h2>The 20 best captions by CIDEr-D</h2>');
    expect(html).toContain('<h2>The 20 worst captions by CIDEr-D</h2>');
    expect(html).toContain('<h2>3 images not scored</h2>');
    expect(html.match(/<img src="data:image\/jpeg;base64,/g)).toHaveLength(40);
    expect(html).not.toMatch(/src="(?!data:)/);
    expect(one.stderr).toMatch(/per-image scores written to/);
  });

  test('the printed table says how many images were scored; --split, --beam, --batch-size and --meteor-jar', async () => {
    const split = path.join(root, 'split.txt');
    // Five file names (one of them missing from the folder) and one image id, in no order.
    fs.writeFileSync(split, [first30[20].file, missing[0], first30[2].file, String(first30[25].id), `val2017/${first30[0].file}`, first30[11].file].join('\n') + '\n');
    // METEOR through a stand-in for Java and the jar (it scores a caption as its word count / 100).
    const java = path.join(root, 'java');
    fs.writeFileSync(java, `#!/bin/sh\nexec '${process.execPath}' '${path.join(__dirname, 'fixtures/evaluate/fake-meteor.js')}' "$@"\n`, { mode: 0o755 });
    const jar = path.join(root, 'meteor-1.5.jar');
    fs.writeFileSync(jar, 'stand-in');
    const r = await runCli(
      ['evaluate', ...modelArgs(), '--references', CAPTIONS, '--images', dir, '--split', split, '--limit', '5', '--beam', '3', '--batch-size', '2', '--quiet', '--meteor-jar', jar],
      { env: { TORCHCAP_JAVA: java } },
    );
    ok(r, 'evaluate --split');
    const out = lines(r.stdout);
    expect(out[0]).toBe(`scored 4 of 5 images; 1 not scored (missing from ${dir} or unreadable, each named on stderr with the reason): ${missing[0]}`);
    expect(out[1]).toMatch(/^COCO caption metrics \(computed as coco-caption does\): 4 images, 2\d reference captions$/);
    expect(out.find((l) => l.startsWith('CIDEr'))).toMatch(/^CIDEr\s+\d+\.\d{6}$/);
    expect(out.find((l) => l.startsWith('METEOR'))).toMatch(/^METEOR\s+0\.\d{6}$/);
    expect(r.stderr).toBe(`torchcap evaluate: not scored: ${path.join(dir, missing[0])}: file not found\n`);
  });

  test('train --eval-every scored the first N images by id with the numbers evaluate gives for the same model', async () => {
    const evals = lines(fs.readFileSync(path.join(path.dirname(models.encoder), 'metrics.jsonl'), 'utf8')).map((l) => JSON.parse(l)).filter((e) => e.type === 'eval');
    expect(evals.map((e) => e.globalStep)).toEqual([16, 32, 40, 48, 64, 80, 96]);
    expect(trainLog).toMatch(/Eval at step 96: Bleu_1 \d/);
    const r = await runCli(['evaluate', ...modelArgs(), '--references', CAPTIONS, '--images', PHOTOS, '--limit', '12', '--json', '--quiet']);
    ok(r, 'evaluate');
    const scores = JSON.parse(r.stdout);
    expect(scores.images).toBe(12);
    for (const m of METRICS) expect(evals[evals.length - 1][m]).toBe(scores[m]);
  });
});

describe('flags are checked before any model loads', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-evaluate-flags-'));
    fs.writeFileSync(path.join(tmp, 'refs.json'), JSON.stringify({ images: [{ id: 1, file_name: 'a.jpg' }, { id: 2, file_name: 'b.jpg' }], annotations: [{ image_id: 1, caption: 'x' }, { image_id: 2, caption: 'y' }] }));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  // Model files that do not exist: a check that came after loading would say so instead.
  const model = { encoder: '/nonexistent/e.ckpt', decoder: '/nonexistent/d.ckpt', vocab: '/nonexistent/v.json' };

  test('evaluate: each bad combination exits 1 naming the problem, with nothing on stdout', async () => {
    const refs = path.join(tmp, 'refs.json');
    const cases: [Parameters<typeof runEvaluate>[0], RegExp][] = [
      [{ references: refs }, /give either --results .* or --images with --encoder, --decoder and --vocab/],
      [{ references: refs, results: refs, images: tmp }, /give either --results/],
      [{ references: refs, images: tmp, encoder: 'e' }, /evaluating a model needs --decoder, --vocab/],
      [{ references: refs, results: refs, limit: 3, report: 'r.html' }, /--limit, --report go with --images \(evaluating a model\), not --results/],
      [{ references: refs, images: tmp, ...model, limit: 0 }, /Expected an integer >= 1 for --limit but received 0/],
      [{ references: refs, images: tmp, ...model, batchSize: 2.5 }, /Expected an integer for --batch-size but received number 2\.5/],
      [{ references: refs, images: tmp, ...model, beam: 0 }, /Expected an integer >= 1 for --beam but received 0/],
      [{ references: refs, images: tmp, ...model, backbone: 'vgg16' }, /--backbone must be one of resnet18/],
      [{ references: refs, images: path.join(tmp, 'none'), ...model }, /images folder not found: .*none/],
      [{ references: refs, images: tmp, ...model, report: path.join(tmp, 'no', 'r.html') }, /cannot write the report to .*r\.html: its folder .*no does not exist/],
      [{ references: refs, images: tmp, ...model, resultsOut: tmp }, /cannot write the results to .*: it is a directory/],
      [{ references: refs, images: tmp, ...model, split: path.join(tmp, 'split.txt') }, /split file not found/],
      [{ references: path.join(tmp, 'nope.json'), images: tmp, ...model }, /references file not found/],
    ];
    for (const [opts, message] of cases) {
      const io = capture();
      expect(await runEvaluate(opts, io)).toBe(1);
      expect(io.stderr()).toMatch(new RegExp(`^torchcap evaluate: .*${message.source}`));
      expect(io.stdout()).toBe('');
    }
    // Only then the model: its missing file is the next problem named.
    const io = capture();
    expect(await runEvaluate({ references: refs, images: tmp, ...model }, io)).toBe(1);
    expect(io.stderr()).toMatch(/^torchcap evaluate: .*\/nonexistent\//);
  });

  test('caption --format coco: needs --references that name every image, once', async () => {
    const refs = path.join(tmp, 'refs.json');
    const cases: [Parameters<typeof runCaption>[0], RegExp][] = [
      [{ images: ['a.jpg'], ...model, format: 'coco' }, /--format coco needs --references/],
      [{ images: ['a.jpg'], ...model, references: refs }, /--references is for --format coco/],
      [{ images: ['a.jpg'], ...model, format: 'coco', json: true, references: refs }, /--json means --format jsonl: it cannot be used with --format coco/],
      [{ images: ['x/a.jpg', 'c.jpg', 'd.jpg'], ...model, format: 'coco', references: refs }, /2 images are not named in .*refs\.json \(by file name\): c\.jpg, d\.jpg/],
      [{ images: ['x/a.jpg', 'y/a.jpg'], ...model, format: 'coco', references: refs }, /x\/a\.jpg and y\/a\.jpg are both image 1 of .*refs\.json/],
      [{ images: ['a.jpg'], ...model, format: 'coco', references: path.join(tmp, 'nope.json') }, /references file not found/],
    ];
    for (const [opts, message] of cases) {
      const io = capture();
      expect(await runCaption(opts, io)).toBe(1);
      expect(io.stderr()).toMatch(new RegExp(`^torchcap caption: .*${message.source}`));
      expect(io.stdout()).toBe('');
    }
  });
});
