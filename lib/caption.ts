/** Captions from images: encoder (eval mode, no gradients) then greedy or beam sampling. */
import { dispatchWithGrad, type Tensor } from './tensor';
import type { CaptionEncoder, CaptionDecoder } from './model';
import type { Vocabulary } from './vocabulary';
import { sampleIds, type SampleOptions } from './sample';

/** Word ids -> caption text, without `<start>`/`<end>`. */
export function idsToCaption(vocab: Vocabulary, ids: number[]): string {
  return vocab.decode(ids).join(' ');
}

/** Captions for a normalized image batch [B, 3, H, W]. */
export async function captionBatch(
  models: { encoder: CaptionEncoder; decoder: CaptionDecoder; vocab: Vocabulary },
  images: Tensor,
  opts: SampleOptions = {},
): Promise<string[]> {
  const features = await dispatchWithGrad(false, () => models.encoder.forwardAsync(images, { train: false }));
  const ids = await sampleIds(models.decoder, features, opts);
  return ids.map((i) => idsToCaption(models.vocab, i));
}
