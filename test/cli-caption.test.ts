/**
 * `torchcap caption`'s contract, through runCaption with captured output: JSON lines or
 * `IMAGE: caption` lines, both vocabulary forms, and a message with exit status 1 (never a stack
 * trace) for every kind of wrong input.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { runCaption, type CaptionCommandOptions } from '../lib/commands/caption';
import { CaptionEncoder, CaptionDecoder } from '../lib/model';
import { saveWeights } from '../lib/model/checkpoint';
import { Vocabulary } from '../lib/vocabulary/vocabulary';
import { manualSeed } from '../lib/core/tensor';

let tmp: string;
let base: CaptionCommandOptions;
let photos: string[];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-caption-cli-'));
  manualSeed(0);
  const vocab = Vocabulary.build(['a dog on the grass', 'a cat on a mat'], { threshold: 1 });
  vocab.save(path.join(tmp, 'vocab.json'));
  fs.writeFileSync(path.join(tmp, 'words.json'), JSON.stringify(vocab.words));
  fs.writeFileSync(path.join(tmp, 'short.json'), JSON.stringify(vocab.words.slice(0, -1)));
  await saveWeights(new CaptionEncoder({ backbone: 18, embedSize: 16 }), path.join(tmp, 'encoder.ckpt'));
  await saveWeights(new CaptionDecoder({ vocabSize: vocab.size, embedSize: 16, hiddenSize: 32 }), path.join(tmp, 'decoder.ckpt'));
  photos = [];
  for (const [i, colour] of ['#c03030', '#30a040'].entries()) {
    const file = path.join(tmp, `photo${i}.png`);
    await sharp({ create: { width: 80, height: 60, channels: 3, background: colour } }).png().toFile(file);
    photos.push(file);
  }
  base = { images: photos, encoder: path.join(tmp, 'encoder.ckpt'), decoder: path.join(tmp, 'decoder.ckpt'), vocab: path.join(tmp, 'vocab.json') };
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function caption(opts: Partial<CaptionCommandOptions>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runCaption({ ...base, ...opts }, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

test('--json: one {"image", "caption"} object a line, in the order given; plain: IMAGE: caption', async () => {
  const json = await caption({ json: true });
  expect([json.code, json.err]).toEqual([0, '']);
  const objects = json.out.trim().split('\n').map((l) => JSON.parse(l));
  expect(objects.map((o) => Object.keys(o).sort())).toEqual([['caption', 'image'], ['caption', 'image']]);
  expect(objects.map((o) => o.image)).toEqual(photos);
  const plain = await caption({});
  expect(plain.out.trim().split('\n')).toEqual(objects.map((o) => `${o.image}: ${o.caption}`));
  // the same captions with the vocabulary as a plain array of words, and with the book's --backbone flag
  const words = await caption({ json: true, vocab: path.join(tmp, 'words.json'), backbone: 'resnet18' });
  expect(words.out).toBe(json.out);
  const beam = await caption({ json: true, beam: 2 });
  expect(beam.code).toBe(0);
});

test.each<[string, Partial<CaptionCommandOptions>, RegExp]>([
  ['a beam that is no positive integer', { beam: 2.5 }, /Expected an integer for --beam but received number 2\.5/],
  ['beam 0', { beam: 0 }, /Expected an integer >= 1 for --beam but received 0/],
  ['a beam that is no number', { beam: NaN }, /Expected an integer for --beam but received NaN \(not a number\)/],
  ['max-len 0', { maxLen: 0 }, /Expected an integer >= 1 for --max-len but received 0/],
  ['an unknown backbone', { backbone: 'resnet99' }, /--backbone must be one of resnet18, .*not resnet99/],
  ['a backbone the checkpoint does not hold', { backbone: 'resnet152' }, /holds a ResNet-18 but --backbone says resnet152/],
  ['a missing encoder file', { encoder: '/nonexistent/encoder.ckpt' }, /nonexistent\/encoder\.ckpt/],
  ['encoder and decoder swapped', { encoder: '', decoder: '' }, /not an encoder checkpoint/],
  ['a vocabulary of another size', { vocab: '' }, /predicts \d+ words but the vocabulary has \d+/],
  ['a vocabulary file that is not JSON', { vocab: '' }, /not valid JSON/],
])('%s: a message and exit 1', async (what, opts, message) => {
  if (what === 'encoder and decoder swapped') Object.assign(opts, { encoder: base.decoder, decoder: base.encoder });
  if (what === 'a vocabulary of another size') opts.vocab = path.join(tmp, 'short.json');
  if (what === 'a vocabulary file that is not JSON') opts.vocab = photos[0];
  const r = await caption(opts);
  expect(r.code).toBe(1);
  expect(r.out).toBe('');
  expect(r.err).toMatch(/^torchcap caption: /);
  expect(r.err).toMatch(message);
  expect(r.err).not.toMatch(/\n\s+at /);
});
