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
import { Tensor, dispatchWithGrad } from '../core/tensor';
import type { CaptionEncoder } from '../model';
import { readSafetensors, saveSafetensors } from '../serialization';
import { imageBatches, chunks, padCaptions, epochOrder, type Sample } from '../data';

export interface FeatureCacheSettings {
  images: string[];
  resize: number;
  crop: number;
  colorManaged: boolean;
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
    return m.resize === s.resize && m.crop === s.crop && (m.colorManaged ?? false) === s.colorManaged && m.backbone === s.backbone && Math.abs(m.signature - s.signature) < 1e-9 && JSON.stringify(m.images) === JSON.stringify(s.images);
  } catch {
    return false;
  }
}

/**
 * The features of `images`, read from `file` when it holds them for the same settings, else
 * computed (batches of `batchSize` through the image loop, which decodes the next batch while the
 * backbone runs) and saved.
 */
export async function buildFeatureCache(
  encoder: CaptionEncoder,
  images: string[],
  opts: {
    file: string;
    resize: number;
    crop: number;
    colorManaged: boolean;
    batchSize?: number;
    /** Only read the file (another process writes it); an error if it does not match. */
    readOnly?: boolean;
    onProgress?: (done: number, total: number) => void;
    onSkip?: (image: string, reason: string) => void;
  },
): Promise<FeatureCache> {
  const settings: FeatureCacheSettings = { images, resize: opts.resize, crop: opts.crop, colorManaged: opts.colorManaged, backbone: encoder.resnet.depth, signature: backboneSignature(encoder) };
  const rowOf = new Map(images.map((p, i) => [p, i]));
  if (fs.existsSync(opts.file)) {
    const { tensors, metadata } = await readSafetensors(opts.file);
    const features = tensors.get('features');
    if (features && sameSettings(metadata, settings)) {
      return { features, rowOf, missing: new Set(JSON.parse(metadata.missing ?? '[]')) };
    }
  }
  if (opts.readOnly) throw new Error(`${opts.file} does not hold the features of these images and settings`);
  const rows: Tensor[] = [];
  const missing = new Set<string>();
  const groups = chunks(images.map((source) => ({ source })), opts.batchSize ?? 32);
  let done = 0;
  for await (const batch of imageBatches(groups, { size: opts.resize, crop: opts.crop, colorManaged: opts.colorManaged })) {
    for (const f of batch.failed) {
      missing.add(f.item.source);
      opts.onSkip?.(f.item.source, f.reason);
    }
    // kept on the CPU (the model may compute on a GPU): the cache is indexed on the host
    const feats = batch.images ? (await dispatchWithGrad(false, () => encoder.featuresAsync(batch.images!, { train: false }))).to('cpu') : null;
    // Unreadable images get zero rows so that row i stays image i.
    const readable = new Set(batch.rows);
    let k = 0;
    const size = batch.rows.length + batch.failed.length;
    for (let i = 0; i < size; i++) rows.push(readable.has(i) ? feats!.select(0, k++).unsqueeze(0) : Tensor.zeros([1, encoder.resnet.featureDim]));
    done += size;
    opts.onProgress?.(done, images.length);
  }
  const features = Tensor.cat(rows, 0).contiguous();
  await saveSafetensors(opts.file, { features }, { settings: JSON.stringify(settings), missing: JSON.stringify([...missing]) });
  return { features, rowOf, missing };
}

/** A training batch of cached features. */
export interface CachedBatch {
  features: Tensor;
  captions: Tensor;
  lengths: number[];
  /** Index of the batch within the epoch (0-based). */
  index: number;
}

/** The samples whose images have cached features (unreadable images are left out before batching). */
export function cachedSamples(cache: FeatureCache, samples: readonly Sample[]): Sample[] {
  return samples.filter((s) => !cache.missing.has(s.image));
}

/**
 * An epoch over cached features, as the loader's over images: the same order (epochOrder) and the
 * book's collate (longest caption first), features gathered by row.
 */
export async function* cachedEpoch(
  cache: FeatureCache,
  samples: readonly Sample[],
  epoch: number,
  opts: { batchSize: number; seed: number; rank: number; worldSize: number; from?: number },
): AsyncGenerator<CachedBatch> {
  const usable = cachedSamples(cache, samples);
  const order = epochOrder(usable.length, epoch, { seed: opts.seed, rank: opts.rank, worldSize: opts.worldSize });
  const bs = opts.batchSize;
  for (let b = opts.from ?? 0; b * bs < order.length; b++) {
    const batch = order.slice(b * bs, (b + 1) * bs).map((k) => usable[k]);
    batch.sort((x, y) => y.ids.length - x.ids.length);
    const rows = Tensor.from(batch.map((s) => cache.rowOf.get(s.image)!), { dtype: 'int64' });
    yield { features: cache.features.indexSelect(0, rows), ...padCaptions(batch.map((s) => s.ids)), index: b };
  }
}
