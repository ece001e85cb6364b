/**
 * Training learns the pictures, not only the language: the book's model trained on generated
 * scenes (lib/demo/scenes.ts) captions held-out scenes far better than a fixed baseline that
 * knows no image, the most frequent training caption given for every image.
 *
 * The baseline is what a decoder that ignores its image feature converges to at best (the mode of
 * the training captions), so a broken encoder, features that do not reach the decoder, or training
 * that does not move the weights all fail here; a model that only learned the sentence template
 * scores close to the baseline and fails too. The margins below are about half of the model's lead
 * in one run (CIDEr-D 3.56 against 0.62, BLEU-4 0.56 against 0.16, 16.5% of the captions exactly
 * right against none), so that they hold on other machines without letting a model that ignores
 * its images pass. With 1,400 training scenes instead of 1,800 the model's lead shrinks (CIDEr-D
 * 2.54, BLEU-4 0.47, 6.5% exact): fewer scenes would make the margins fragile. A model trained on
 * the same scenes with each caption moved to another image (so that it can learn the sentences but
 * not the pictures) must fail the same margins: the second test trains it and checks that it does.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateScenes } from '../lib/demo/scenes';
import { Trainer } from '../lib/train/trainer';
import { Captioner } from '../lib/captioner';
import { readCaptions } from '../lib/data/datasets';
import { evaluateCaptionsSync, tokenizeCaptions, type CaptionResult } from '../lib/evaluate';

/** What the trained model must reach above the baseline, on the held-out scenes. */
const MARGIN = { CIDEr: 1.5, Bleu_4: 0.2, exact: 0.05 };

let tmp: string;
let data: Awaited<ReturnType<typeof generateScenes>>;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-learning-'));
  data = await generateScenes({ outDir: path.join(tmp, 'data'), count: 2000, heldOut: 200, seed: 11, size: 64 });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The most frequent training caption (compared after coco-caption's tokenization), as written. */
function mostFrequentCaption(captions: readonly string[]): string {
  const tokenized = tokenizeCaptions(captions);
  const counts = new Map<string, number>();
  for (const t of tokenized) counts.set(t, (counts.get(t) ?? 0) + 1);
  let best = tokenized[0];
  for (const [t, n] of counts) if (n > counts.get(best)! || (n === counts.get(best)! && t < best)) best = t;
  return captions[tokenized.indexOf(best)];
}

/**
 * Trains the book's model on `trainFile` (COCO captions of the generated scenes), captions the
 * held-out scenes, prints the scores, and says for each metric whether the model beat the baseline
 * by its margin.
 */
async function trainAndScore(name: string, trainFile: string) {
  const trainer = await Trainer.create({
    images: data.images,
    captions: trainFile,
    out: path.join(tmp, `models-${name}`),
    epochs: 6,
    batchSize: 64,
    lr: 0.006,
    saveEvery: 1_000_000,
    backbone: 18,
    backboneMode: 'eval',
    cacheFeatures: true,
    embedSize: 64,
    hiddenSize: 128,
    resize: 64,
    crop: 64,
    seed: 0,
    quiet: true,
  });
  await trainer.run();

  const test = readCaptions(data.test, data.images);
  const train = readCaptions(data.train, data.images);
  const captioner = await Captioner.load({ encoder: trainer.encoder, decoder: trainer.decoder, vocab: trainer.vocab, imageSize: 64, batchSize: 100 });
  const captions = await captioner.caption(test.images.map((i) => test.imagePath(i.id)));
  await captioner.dispose();
  const baseline = mostFrequentCaption(train.annotations.map((a) => a.caption));

  const model: CaptionResult[] = test.images.map((img, k) => ({ image_id: img.id, caption: captions[k] }));
  const constant: CaptionResult[] = test.images.map((img) => ({ image_id: img.id, caption: baseline }));
  const ours = evaluateCaptionsSync(test.toCoco(), model).metrics;
  const theirs = evaluateCaptionsSync(test.toCoco(), constant).metrics;
  // Exactly right: the caption equals one of the image's references (after tokenization).
  const exact = (results: CaptionResult[]) => {
    const hits = results.filter((r) => tokenizeCaptions(test.captionsByImage.get(r.image_id)!).includes(tokenizeCaptions([r.caption])[0]));
    return hits.length / results.length;
  };
  const scores = {
    model: { CIDEr: ours.CIDEr, Bleu_4: ours.Bleu_4, exact: exact(model) },
    baseline: { CIDEr: theirs.CIDEr, Bleu_4: theirs.Bleu_4, exact: exact(constant), caption: baseline },
  };
  // eslint-disable-next-line no-console
  console.log(`learning (${name}): ${JSON.stringify(scores)}`);
  return (Object.keys(MARGIN) as (keyof typeof MARGIN)[]).map((k) => {
    const row = { metric: k, model: scores.model[k], baseline: scores.baseline[k], margin: MARGIN[k] };
    return { ...row, beaten: row.model >= row.baseline + row.margin };
  });
}

test('a model trained on 1,800 scenes beats the most frequent training caption on 200 held-out scenes', async () => {
  for (const row of await trainAndScore('scenes', data.train)) expect(row).toEqual({ ...row, beaten: true });
}, 600_000);

test('the same model trained with every caption moved to another scene does not pass: the margins need the pictures', async () => {
  // Each training scene's captions go to the next scene: the sentences stay, the pictures no longer match them.
  const coco = JSON.parse(fs.readFileSync(data.train, 'utf8')) as { images: { id: number }[]; annotations: { image_id: number }[] };
  const ids = coco.images.map((i) => i.id);
  const next = new Map(ids.map((id, k) => [id, ids[(k + 1) % ids.length]]));
  for (const a of coco.annotations) a.image_id = next.get(a.image_id)!;
  const moved = path.join(tmp, 'train-moved.json');
  fs.writeFileSync(moved, JSON.stringify(coco));
  const rows = await trainAndScore('captions moved', moved);
  expect(rows.every((r) => r.beaten)).toBe(false);
  expect(rows.find((r) => r.metric === 'CIDEr')).toMatchObject({ beaten: false });
}, 600_000);
