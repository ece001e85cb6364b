/**
 * Mistakes on the command line: each is refused before any work starts (no model loaded, no data
 * read, nothing written), in the words of the flag the user typed; and the training run's own
 * dead ends (a wrong folder, every image unreadable, nothing left to resume, a last batch of one
 * image) end with a message instead of a crash or checkpoints of an untrained model.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FIXTURE_CAPTIONS, FIXTURE_IMAGES } from './support/data';
import { describeIf } from './support/skip';
import { runCli, cliBuilt, NO_CLI, type CliResult } from './support/cli';
import { loadVocabulary } from '../lib';

let root: string;
beforeAll(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-flags-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** The command failed with exit status 1 and `message` as its last line, without a stack or an abort. */
function refused(r: CliResult, message: RegExp): void {
  expect({ code: r.code, signal: r.signal }).toEqual({ code: 1, signal: null });
  const last = r.stderr.trim().split('\n').pop();
  expect(last).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n|Segmentation|Aborted|terminate called|FATAL/);
}

// A tiny run: ResNet-18 at 128/112 on the 13 fixture photos (65 captions).
const trainArgs = (out: string, extra: string[] = [], images = FIXTURE_IMAGES) => [
  'train', '--images', images, '--captions', FIXTURE_CAPTIONS, '--out', out, '--backbone', 'resnet18', ...extra,
  ...(extra.includes('--resize') || extra.includes('--crop') ? [] : ['--resize', '128', '--crop', '112']),
];

describeIf(cliBuilt, NO_CLI, 'flag mistakes are refused in the flag\'s own name, before any work', () => {
  test("every command's --help lists its positionals and flags without a made-up default", async () => {
    for (const command of ['caption', 'train', 'evaluate', 'vocab', 'resize', 'serve', 'download', 'demo']) {
      const r = await runCli([command, '--help']);
      expect({ command, code: r.code }).toEqual({ command, code: 0 });
      expect(r.stdout).toContain(`torchcap ${command}`);
      expect({ command, empty: /\[default: \[\]\]/.test(r.stdout) }).toEqual({ command, empty: false }); // yargs's default for a variadic positional
    }
  });

  test('a flag that takes one value, given twice, is named (yargs would pass an array on)', async () => {
    refused(await runCli(['caption', 'a.jpg', 'b.jpg', '--encoder', 'e', '--decoder', 'd', '--vocab', 'v1', '--vocab', 'v2']), /^--vocab given more than once: each takes one value$/);
    refused(await runCli([...trainArgs(path.join(root, 'twice')), '--batch-size', '4', '--batch-size', '8']), /^--batch-size given more than once/);
    // flags that take several values still do
    const r = await runCli([...trainArgs(path.join(root, 'stages')), '--fine-tune', 'layer3', '--fine-tune', 'layer4', '--cache-features']);
    refused(r, /^torchcap train: --fine-tune trains backbone stages, which --cache-features computes once before training: use one or the other$/);
  });

  test('train: numbers, combinations and stages', async () => {
    const out = path.join(root, 'train');
    const cases: [string[], RegExp][] = [
      [['--max-steps', '0'], /--max-steps but received 0$/],
      [['--lr', 'abc'], /Expected a finite number for --lr but received NaN \(not a number\)$/],
      [['--lr', '0'], /Expected a number above 0 for --lr but received 0$/],
      [['--embed-size', '0'], /for --embed-size but received 0$/],
      [['--batch-size', '1'], /--batch-size 1 cannot train: the encoder's BatchNorm1d takes its statistics over the batch/],
      [['--resize', '128', '--crop', '200'], /--crop \(200\) is larger than --resize \(128\)/],
      [['--eval-every', '5'], /--eval-every scores captions of validation images: it needs --val-captions/],
      [['--nproc', '1.5'], /Expected an integer for --nproc but received number 1\.5$/],
      [['--nproc', '0'], /Expected an integer >= 1 for --nproc but received 0$/],
      [['--dist-timeout', '0'], /Expected a number above 0 for --dist-timeout but received 0$/],
      [['--split', 'Flickr_8k.trainImages.txt'], /a split list \(Flickr_8k\.trainImages\.txt\) applies to Flickr8k's token file \(\.txt\)/],
    ];
    for (const [flags, message] of cases) refused(await runCli(trainArgs(out, flags)), message);
    refused(await runCli(trainArgs(out, ['--fine-tune', 'layer5'])), /Argument: fine-tune, Given: "layer5", Choices: "layer1", "layer2", "layer3", "layer4"/);
    expect(fs.existsSync(out)).toBe(false); // nothing started
  });

  test('serve, resize, vocab, demo and download', async () => {
    const model = ['--encoder', 'e.ckpt', '--decoder', 'd.ckpt', '--vocab', 'v.json'];
    refused(await runCli(['serve', ...model, '--timeout', '0']), /^torchcap serve: Expected an integer >= 1 for --timeout but received 0$/);
    refused(await runCli(['serve', ...model, '--max-queue', '-1']), /for --max-queue but received -1$/);
    // the server's own beam width is bounded as a request's ?beam= is
    refused(await runCli(['serve', ...model, '--beam', '25']), /^torchcap serve: Expected an integer from 1 to 20 for --beam but received 25$/);
    refused(await runCli(['resize', '--input', FIXTURE_IMAGES, '--output', path.join(root, 'r'), '--quality', '0']), /^torchcap resize: Expected an integer from 1 to 100 for --quality but received 0$/);
    refused(await runCli(['vocab', '--captions', FIXTURE_CAPTIONS, '--out', path.join(root, 'v.json'), '--threshold', '0']), /^torchcap vocab: Expected an integer >= 1 for --threshold but received 0$/);
    refused(await runCli(['vocab', '--captions', FIXTURE_CAPTIONS, '--out', path.join(root, 'vocabulary.pkl')]), /torchcap writes vocabularies as JSON, not as the book's pickle: name it \.json$/);
    expect(fs.existsSync(path.join(root, 'vocabulary.pkl'))).toBe(false);
    const demo = path.join(root, 'demo');
    refused(await runCli(['demo', '--out', demo, '--held-out', '0']), /^torchcap demo: Expected an integer from 1 to 5999 for --held-out but received 0$/);
    refused(await runCli(['demo', '--out', demo, '--epochs', '0']), /^torchcap demo: Expected an integer >= 1 for --epochs but received 0$/);
    expect(fs.existsSync(demo)).toBe(false); // refused before generating a scene
    refused(await runCli(['download', 'coco', '--dir', path.join(root, 'dl'), '--retries', '-1']), /^torchcap download coco: Expected an integer >= 0 for --retries but received -1$/);
  });

  test('a COCO captions file given as the vocabulary says what it is', async () => {
    await expect(loadVocabulary(FIXTURE_CAPTIONS)).rejects.toThrow(/not a torchcap vocabulary \(it looks like a COCO captions file\): it has no "format" field/);
  });
});

describeIf(cliBuilt, NO_CLI, "the training run's dead ends", () => {
  test('a wrong --images folder stops at once and saves no checkpoint', async () => {
    const out = path.join(root, 'wrong-folder');
    refused(await runCli(trainArgs(out, [], path.join(root, 'nope'))), /^torchcap train: images folder not found: .*nope$/);
    refused(await runCli(trainArgs(out, [], FIXTURE_CAPTIONS)), /is a file, not a folder$/);
    expect(fs.existsSync(out)).toBe(false);
  });

  test('a folder where no image can be read stops after the first epoch, saving no checkpoint under a trained model\'s name', async () => {
    const images = path.join(root, 'empty-images');
    fs.mkdirSync(images);
    const out = path.join(root, 'unreadable');
    const r = await runCli(trainArgs(out, ['--batch-size', '8', '--quiet'], images));
    refused(r, /^torchcap train: epoch 1 trained no step: none of its images could be read \(13 skipped; is .*empty-images the right folder\?\)$/);
    expect(fs.readdirSync(out).filter((f) => /\.ckpt$|^latest\.json$/.test(f))).toEqual([]);
  }, 60000);

  test('an epoch whose last batch holds one image leaves it out and says so; the log lines go to stdout; a finished run resumed says so', async () => {
    // 65 captions in batches of 4: 16 of 4 and one of 1.
    const out = path.join(root, 'one-left');
    const r = await runCli(trainArgs(out, ['--batch-size', '4', '--epochs', '1', '--log-every', '5']));
    expect({ code: r.code, stderr: r.stderr }).toMatchObject({ code: 0 });
    // without --quiet, the book's lines reach stdout when it is not a terminal (the bar goes to stderr)
    expect(r.stdout.split('\n').filter((l) => l.startsWith('Epoch ['))).toEqual([
      expect.stringMatching(/^Epoch \[0\/1\], Step \[0\/17\], Loss: /),
      expect.stringMatching(/^Epoch \[0\/1\], Step \[5\/17\], Loss: /),
      expect.stringMatching(/^Epoch \[0\/1\], Step \[10\/17\], Loss: /),
      expect.stringMatching(/^Epoch \[0\/1\], Step \[15\/17\], Loss: /),
    ]);
    expect(r.stdout).toMatch(/^Step \[16\/17\] left out: one image, and batch norm needs two or more$/m);
    expect(r.stdout).toMatch(/^done: 16 steps, last loss \d+\.\d{4}, 0 images skipped/m);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'latest.json'), 'utf8')).encoder).toBe('encoder-1-17.ckpt');

    const again = await runCli(trainArgs(out, ['--batch-size', '4', '--epochs', '1', '--resume', '--quiet']));
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^done: nothing left to train: the run in .*one-left has finished its 1 epoch \(16 steps\); raise --epochs to train on$/m);
  }, 120000);
});
