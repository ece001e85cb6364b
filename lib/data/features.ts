/**
 * Cached backbone features: the frozen encoder's ResNet run once over every training image
 * (eval mode, centre crop, no flip), so that later epochs cost only the trainable head and the
 * decoder. A departure from the book, which runs the backbone (in train mode, with random crops
 * and flips) on every step: documented in the README.
 *
 * Stored as safetensors next to the checkpoints (`features.safetensors`: a [N, F] float32 tensor
 * plus the image list and settings as metadata) and reused when the settings match.
 */
import * as fs from 'fs';
import { Tensor, dispatchWithGrad } from '../tensor';
import type { CaptionEncoder } from '../model';
import { readSafetensors, saveSafetensors } from '../serialization';
import { decodeImage, toBatchAsync, ImageError, type RawImage } from './images';

export interface FeatureCacheSettings {
  images: string[];
  resize: number;
  crop: number;
  backbone: number;
  /** Sum of the backbone's first convolution weights: tells apart differently initialised backbones. */
  signature: number;
}

export interface FeatureCache {
  /** [N, F] float32, row i for images[i]; rows of unreadable images are zero and listed in `missing`. */
  features: Tensor;
  rowOf: Map<string, number>;
  missing: Set<string>;
}

export function backboneSignature(encoder: CaptionEncoder): number {
  return encoder.resnet.stateDict().get('conv1.weight')!.to('float64').sum().item();
}

function sameSettings(meta: Record<string, string>, s: FeatureCacheSettings): boolean {
  try {
    const m = JSON.parse(meta.settings ?? '{}');
    return m.resize === s.resize && m.crop === s.crop && m.backbone === s.backbone && Math.abs(m.signature - s.signature) < 1e-9 && JSON.stringify(m.images) === JSON.stringify(s.images);
  } catch {
    return false;
  }
}

/**
 * The features of `images`, read from `file` when it holds them for the same settings, else
 * computed (batches of `batchSize`, decoding the next batch while the backbone runs) and saved.
 */
export async function buildFeatureCache(
  encoder: CaptionEncoder,
  images: string[],
  opts: {
    file: string;
    resize: number;
    crop: number;
    batchSize?: number;
    /** Only read the file (another process writes it); an error if it does not match. */
    readOnly?: boolean;
    onProgress?: (done: number, total: number) => void;
    onSkip?: (image: string, reason: string) => void;
  },
): Promise<FeatureCache> {
  const settings: FeatureCacheSettings = { images, resize: opts.resize, crop: opts.crop, backbone: encoder.resnet.depth, signature: backboneSignature(encoder) };
  const rowOf = new Map(images.map((p, i) => [p, i]));
  if (fs.existsSync(opts.file)) {
    const { tensors, metadata } = await readSafetensors(opts.file);
    const features = tensors.get('features');
    if (features && sameSettings(metadata, settings)) {
      return { features, rowOf, missing: new Set(JSON.parse(metadata.missing ?? '[]')) };
    }
  }
  if (opts.readOnly) throw new Error(`${opts.file} does not hold the features of these images and settings`);
  const bs = opts.batchSize ?? 32;
  const rows: Tensor[] = [];
  const missing = new Set<string>();
  const offset = (opts.resize - opts.crop) >> 1;
  const decodeBatch = (b: number) =>
    Promise.all(
      images.slice(b, b + bs).map((p) =>
        decodeImage(p, opts.resize).catch((e: unknown) => {
          if (!(e instanceof ImageError)) throw e;
          missing.add(p);
          opts.onSkip?.(p, e.message);
          return null;
        }),
      ),
    );
  let next = decodeBatch(0);
  for (let b = 0; b < images.length; b += bs) {
    const decoded = await next;
    if (b + bs < images.length) next = decodeBatch(b + bs);
    const ok = decoded.filter((d): d is RawImage => d !== null);
    let feats: Tensor | null = null;
    if (ok.length) {
      const x = await toBatchAsync(ok, { crop: opts.crop, crops: ok.map(() => [offset, offset]) });
      // kept on the CPU (the model may compute on a GPU): the cache is indexed on the host
      feats = (await dispatchWithGrad(false, () => encoder.featuresAsync(x, { train: false }))).to('cpu');
    }
    // Unreadable images get zero rows so that row i stays image i.
    let k = 0;
    for (const d of decoded) rows.push(d ? feats!.select(0, k++).unsqueeze(0) : Tensor.zeros([1, encoder.resnet.featureDim]));
    opts.onProgress?.(Math.min(b + bs, images.length), images.length);
  }
  const features = Tensor.cat(rows, 0).contiguous();
  await saveSafetensors(opts.file, { features }, { settings: JSON.stringify(settings), missing: JSON.stringify([...missing]) });
  return { features, rowOf, missing };
}
