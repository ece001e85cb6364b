/**
 * A small captioner with random weights, saved as checkpoints, for tests of the async API and the
 * server: ResNet-18 encoder (embed 32), LSTM decoder (hidden 64), a vocabulary of a few captions.
 * Random weights would end most captions at once, so the decoder's output bias pushes `<end>`
 * and `<pad>` down: every greedy caption is exactly `maxLen` words.
 *
 * Also test images: PNG and JPEG files made with sharp, and a small PNG that declares
 * 20,000×20,000 pixels (scripts/fixtures/bomb-png.js: 48 KB that would decode to 400 megapixels).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { CaptionEncoder, CaptionDecoder } from '../../lib/model';
import { saveWeights } from '../../lib/model/checkpoint';
import { Vocabulary, END, PAD } from '../../lib/vocabulary/vocabulary';
import { Tensor, noGrad, manualSeed } from '../../lib/core/tensor';

export const TINY_CAPTIONS = [
  'a dog runs on the grass',
  'a cat sits on a red mat',
  'the blue ball is on the table',
  'two birds fly over the water',
];

export interface TinyModels {
  dir: string;
  encoder: string;
  decoder: string;
  vocab: string;
}

/** The tiny decoder with random weights whose output bias keeps `<end>` and `<pad>` from being chosen. */
export function tinyDecoder(vocabSize: number): CaptionDecoder {
  const decoder = new CaptionDecoder({ vocabSize, embedSize: 32, hiddenSize: 64 });
  const bias = decoder.stateDict().get('linear_layer.bias')!;
  const values = Float32Array.from(bias.toTypedArray() as Float32Array);
  values[END] = -1e4;
  values[PAD] = -1e4;
  noGrad(() => bias.copyFrom(Tensor.from(values)));
  return decoder;
}

/** Writes encoder.ckpt, decoder.ckpt and vocab.json into a new temp folder. */
export async function writeTinyModels(seed = 0): Promise<TinyModels> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-tiny-'));
  manualSeed(seed);
  const vocab = Vocabulary.build(TINY_CAPTIONS, { threshold: 1 });
  const encoder = new CaptionEncoder({ backbone: 18, embedSize: 32 });
  const decoder = tinyDecoder(vocab.size);
  const files: TinyModels = {
    dir,
    encoder: path.join(dir, 'encoder.ckpt'),
    decoder: path.join(dir, 'decoder.ckpt'),
    vocab: path.join(dir, 'vocab.json'),
  };
  await saveWeights(encoder, files.encoder);
  await saveWeights(decoder, files.decoder);
  vocab.save(files.vocab);
  return files;
}

export function removeTinyModels(m: TinyModels | undefined): void {
  if (m) fs.rmSync(m.dir, { recursive: true, force: true });
}

/** A solid-colour image, encoded. */
export function solidImage(width: number, height: number, colour: string, format: 'png' | 'jpeg' = 'png'): Promise<Buffer> {
  const img = sharp({ create: { width, height, channels: 3, background: colour } });
  return (format === 'png' ? img.png() : img.jpeg()).toBuffer();
}

/** A noisy image (so that captions of different images may differ), encoded as PNG. */
export function noiseImage(width: number, height: number, seed: number): Promise<Buffer> {
  const data = Buffer.alloc(width * height * 3);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < data.length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    data[i] = x >>> 24;
  }
  return sharp(data, { raw: { width, height, channels: 3 } }).png().toBuffer();
}

/** A valid 1-bit greyscale PNG of width×height zeros: tiny on disk, huge decoded. */
export const bombPng: (width?: number, height?: number) => Buffer = require('../../scripts/fixtures/bomb-png').bombPng;
