/**
 * Validation during training: the first `limit` images (by id) of a captions file, chosen as
 * `torchcap evaluate --limit` chooses them (evaluate/set.ts), then captioned and scored by the
 * same code as `torchcap evaluate` (evaluateModel, sample/evaluate.ts). Unreadable images are left
 * out of the scores and reported as skipped.
 */
import { readCaptions } from '../data';
import { evaluationSet, type EvaluationSet } from '../evaluate';

/** The validation set of a captions file (COCO JSON, JSONL or Flickr8k) whose images are in `imagesDir`. */
export function validationSet(captions: string, imagesDir: string, limit: number): EvaluationSet {
  return evaluationSet(readCaptions(captions, imagesDir).toCoco(), { images: imagesDir, limit, source: captions });
}
