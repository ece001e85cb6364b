/**
 * The book's captions on real photos: a book-format checkpoint trained here on the 50 COCO photos'
 * own captions (scripts/fixtures/book_captioner.py, until most photos get a caption of their own),
 * then the greedy caption of every photo from torchcap's Captioner and from the book's Python
 * inference (load_image + transform + encoder.eval() + decoder.sample). They must be the same; a
 * difference is accepted only as a true tie, which the test prints with the two logits.
 */
import { createHash } from 'crypto';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Captioner } from '../lib/captioner';
import { PYTHON, pythonHas } from './support/python';
import { sharedData } from './support/data';
import { describeIf } from './support/skip';

const FIXTURES = path.join(__dirname, '..', 'scripts', 'fixtures');
const SCRIPT = path.join(FIXTURES, 'book_captioner.py');
const MINI = sharedData('coco-val2017-mini');
const present = fs.existsSync(path.join(MINI, 'captions.json'));
const live = pythonHas('torch', 'torchvision', 'PIL', 'nltk');

/** Logits closer than this (relative to their size) are a tie that float rounding may break either way. */
const TIE = 1e-4;

interface BookCaption {
  file: string;
  ids: number[];
  caption: string;
  /** Per step, the five largest logits as [id, value]. */
  top: [number, number][][];
}

/**
 * The trained checkpoint, kept in the system's temporary folder under a hash of everything that
 * makes it (the training script, the book's models, the captions), so a rerun does not train again.
 */
function checkpoint(): string {
  const hash = createHash('sha256');
  for (const f of [SCRIPT, path.join(FIXTURES, 'book_models.py'), path.join(MINI, 'captions.json')]) hash.update(fs.readFileSync(f));
  const dir = path.join(os.tmpdir(), `torchcap-book-captioner-${hash.digest('hex').slice(0, 16)}`);
  if (!fs.existsSync(path.join(dir, 'vocabulary.pkl'))) {
    const part = `${dir}.part-${process.pid}`;
    execFileSync(PYTHON, [SCRIPT, 'train', part, path.join(MINI, 'captions.json'), path.join(MINI, 'images')], { stdio: 'pipe' });
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(part, dir);
  }
  return dir;
}

describeIf(present && live, present ? `${PYTHON} lacks torch, torchvision, PIL or nltk` : `no COCO mini set in ${MINI}`, "greedy captions of the 50 COCO photos, against the book's Python inference", () => {
  let book: BookCaption[];
  let ours: string[];
  beforeAll(async () => {
    const dir = checkpoint();
    const files = fs.readdirSync(path.join(MINI, 'images')).filter((f) => f.endsWith('.jpg')).sort().map((f) => path.join(MINI, 'images', f));
    book = JSON.parse(execFileSync(PYTHON, [SCRIPT, 'caption', dir, ...files], { encoding: 'utf8', maxBuffer: 1 << 26 }));
    const captioner = await Captioner.load({ encoder: path.join(dir, 'encoder.ckpt'), decoder: path.join(dir, 'decoder.ckpt'), vocab: path.join(dir, 'vocabulary.pkl') });
    try {
      ours = await captioner.caption(files);
    } finally {
      await captioner.dispose();
    }
  }, 600000);

  test('the model tells the photos apart: at least 20 distinct captions among the 50', () => {
    expect(book).toHaveLength(50);
    const distinct = new Set(book.map((b) => b.caption)).size;
    // eslint-disable-next-line no-console
    console.log(`${distinct} distinct captions among the 50 photos; torchcap gives the book's for ${book.filter((b, i) => ours[i] === b.caption).length}`);
    expect(distinct).toBeGreaterThanOrEqual(20);
  });

  test("torchcap's caption of every photo is the book's (a difference only at a true tie)", () => {
    const untied: string[] = [];
    book.forEach((b, i) => {
      if (ours[i] === b.caption) return;
      // The first word that differs: the book's step t + 1 (step 0 gives <start>).
      const a = ours[i].split(' ');
      const w = b.caption.split(' ');
      let t = 0;
      while (t < a.length && a[t] === w[t]) t++;
      const step = b.top[t + 1];
      const [first, second] = step;
      const tie = Math.abs(first[1] - second[1]) <= TIE * Math.max(1, Math.abs(first[1]));
      // eslint-disable-next-line no-console
      console.log(`${path.basename(b.file)}: word ${t + 1} differs (torchcap "${a[t]}", book "${w[t]}"); the book's two largest logits there: ${first[1]} and ${second[1]}${tie ? ' (a tie)' : ''}`);
      if (!tie) untied.push(`${path.basename(b.file)}: torchcap "${ours[i]}", book "${b.caption}"`);
    });
    expect(untied).toEqual([]);
  });
});
