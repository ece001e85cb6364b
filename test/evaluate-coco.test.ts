/**
 * The whole COCO 2017 validation set: 5,000 images, 25,014 reference captions.
 *
 * Expected numbers below are coco-caption's own scorers (pycocoevalcap's Bleu, Rouge and Cider,
 * under CPython and NumPy) on the same tokenized captions:
 * scripts/fixtures/make-coco-metric-oracle.py recomputes them. The tokenization itself is checked
 * against a scanner generated from the Stanford grammar (fixture digest below; see
 * test/fixtures/README.md).
 */
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { type CaptionResult, type ImageId, evaluateCaptionsSync, readJsonFile, readReferencesFile, tokenizeCaptions } from '../lib/evaluate';
import { NO_SHARED_DATA, sharedData, sharedDataPresent } from './support/data';
import { describeIf } from './support/skip';

describeIf(sharedDataPresent, NO_SHARED_DATA, 'COCO val2017 captions', () => {
  const file = sharedData('coco-captions-val2017.json');
  let refs: Map<ImageId, string[]>;
  beforeAll(() => {
    refs = readReferencesFile(file);
  });

  test('tokenization of all 25,014 captions equals the generated scanner\'s', () => {
    const coco = readJsonFile(file, 'references') as { annotations: Array<{ caption: string }> };
    const oracle = JSON.parse(fs.readFileSync(path.join(__dirname, 'fixtures/evaluate/ptb-oracle-val2017.json'), 'utf8'));
    const captions = coco.annotations.map((a) => a.caption);
    expect(captions.length).toBe(oracle.captions);
    const digest = crypto.createHash('sha256').update(tokenizeCaptions(captions).join('\n')).digest('hex');
    expect(digest).toBe(oracle.sha256);
  });

  test('each image\'s first caption scored against its other captions', () => {
    expect(refs.size).toBe(5000);
    const results: CaptionResult[] = [];
    const others = new Map<ImageId, string[]>();
    for (const [id, caps] of refs) {
      results.push({ image_id: id, caption: caps[0] });
      others.set(id, caps.slice(1));
    }
    const ev = evaluateCaptionsSync(others, results);
    expect(ev.images).toBe(5000);
    expect(ev.bleuStats).toEqual({
      testlen: 52059, reflen: 50209, guess: [52059, 47059, 42059, 37059], correct: [33033, 14194, 5596, 2130], ratio: expect.any(Number),
    });
    const m = ev.metrics;
    expect(m.Bleu_1).toBeCloseTo(0.6345300524404881, 12);
    expect(m.Bleu_2).toBeCloseTo(0.43747894010785332, 12);
    expect(m.Bleu_3).toBeCloseTo(0.29420114270792885, 12);
    expect(m.Bleu_4).toBeCloseTo(0.19559364642425459, 12);
    expect(m.ROUGE_L).toBeCloseTo(0.47181075548961071, 12);
    expect(m.CIDEr).toBeCloseTo(0.88708403327496599, 12);
    // Sanity, independent of the pinned values: human captions agree partially with each other.
    expect(m.Bleu_1).toBeGreaterThan(m.Bleu_2);
    expect(m.Bleu_2).toBeGreaterThan(m.Bleu_3);
    expect(m.Bleu_3).toBeGreaterThan(m.Bleu_4);
    expect(m.CIDEr).toBeGreaterThan(0.5);
    expect(m.CIDEr).toBeLessThan(1.5);
    for (const p of ev.perImage) {
      expect(Number.isFinite(p.CIDEr) && p.CIDEr >= 0).toBe(true);
      expect(p.ROUGE_L >= 0 && p.ROUGE_L <= 1).toBe(true);
    }
  });

  test('a caption scored against all five references including itself; and against another image\'s', () => {
    const self: CaptionResult[] = [];
    const wrong: CaptionResult[] = [];
    const ids = [...refs.keys()];
    ids.forEach((id, i) => {
      self.push({ image_id: id, caption: refs.get(id)![0] });
      wrong.push({ image_id: id, caption: refs.get(ids[(i + 1) % ids.length])![0] });
    });
    const a = evaluateCaptionsSync(refs, self);
    expect(a.metrics.ROUGE_L).toBe(1);
    expect(a.metrics.Bleu_4).toBeCloseTo(1, 9);
    expect(a.metrics.CIDEr).toBeCloseTo(2.717855539595504, 12);
    const b = evaluateCaptionsSync(refs, wrong);
    expect(b.metrics.CIDEr).toBeLessThan(a.metrics.CIDEr / 10);
    expect(b.metrics.Bleu_4).toBeLessThan(0.05);
    expect(b.metrics.ROUGE_L).toBeLessThan(a.metrics.ROUGE_L / 2);
  });
});
