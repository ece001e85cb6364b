/**
 * A model's scores on an evaluation set: caption every image of the set with the captioning loop
 * (captions.ts: batched, unreadable images reported in their place), then score the captions of the
 * images that were read against their references. `torchcap evaluate --images`, `Captioner.evaluate`
 * and validation during training (`train --eval-every`) all come here.
 */
import { EvaluationInputError, type CaptionEvaluation, type CaptionResult, type EvaluateWithMeteorOptions, type EvaluationSet, type ImageId } from '../evaluate';
import { captionImages, type CaptionImagesOptions, type CaptionModels } from './captions';

/** An image of the set that could not be captioned: missing from the folder, or unreadable. */
export interface UnscoredImage {
  id: ImageId;
  path: string;
  reason: string;
}

export interface ModelEvaluation {
  /** The scores of the images that were read (`evaluation.images` of them). */
  evaluation: CaptionEvaluation;
  /** Their captions, in the set's order (COCO's results format). */
  results: CaptionResult[];
  /** The images left out of the scores, in the set's order, with the reason. */
  failed: UnscoredImage[];
}

/** How to caption (beam, batch size, progress, ...) and how to score (METEOR's jar, or `meteor: false`). */
export interface EvaluateModelOptions extends CaptionImagesOptions, EvaluateWithMeteorOptions {}

/** Captions the set's images and scores them (see the module comment); throws when no image could be read. */
export async function evaluateModel(models: CaptionModels, set: EvaluationSet, opts: EvaluateModelOptions = {}): Promise<ModelEvaluation> {
  const outcomes = await captionImages(models, set.images.map((i) => i.path), opts);
  const results: CaptionResult[] = [];
  const failed: UnscoredImage[] = [];
  outcomes.forEach((o, k) => {
    const img = set.images[k];
    if ('caption' in o) results.push({ image_id: img.id, caption: o.caption });
    else failed.push({ id: img.id, path: img.path, reason: o.error });
  });
  if (results.length === 0) {
    throw new EvaluationInputError(`none of the ${failed.length} images could be read, so nothing was scored (first: ${failed[0]?.reason})`);
  }
  const evaluation = await set.score(results, opts);
  return { evaluation, results, failed };
}
