/**
 * Validation during training: caption the validation images with the captioning loop (the same
 * code as `caption`, sample/captions.ts) and score them with the COCO metrics. Unreadable images
 * are left out of the scores and counted.
 */
import { readCaptions } from '../data';
import { CaptionEvaluator } from '../evaluate';
import { captionImages, type CaptionModels } from '../sample';

export interface ValidationScores {
  metrics: Record<string, number>;
  /** Images captioned and scored. */
  scored: number;
  /** Images that could not be read, with the reason. */
  failed: { image: string; reason: string }[];
}

export class Validation {
  private constructor(
    private readonly evaluator: CaptionEvaluator,
    /** The validation images: COCO id and file. */
    readonly images: readonly { id: string | number; path: string }[],
  ) {}

  /** The first `limit` images of a COCO captions file, in the file's order, found in `imagesDir`. */
  static fromCaptions(captions: string, imagesDir: string, limit: number): Validation {
    const val = readCaptions(captions, imagesDir);
    const chosen = val.images.slice(0, limit);
    const sub = val.subset(chosen.map((i) => i.id));
    return new Validation(
      new CaptionEvaluator(sub.toCoco()),
      chosen.map((i) => ({ id: i.id, path: val.imagePath(i.id) })),
    );
  }

  /** Greedy (or beam) captions of the validation images, scored. */
  async score(models: CaptionModels, opts: { imageSize: number; batchSize: number; beam?: number; colorManaged?: boolean }): Promise<ValidationScores> {
    const outcomes = await captionImages(models, this.images.map((i) => i.path), opts);
    const results: { image_id: string | number; caption: string }[] = [];
    const failed: { image: string; reason: string }[] = [];
    outcomes.forEach((o, k) => {
      if ('caption' in o) results.push({ image_id: this.images[k].id, caption: o.caption });
      else failed.push({ image: this.images[k].path, reason: o.error });
    });
    const scored = this.evaluator.evaluate(results);
    return { metrics: scored.metrics as unknown as Record<string, number>, scored: results.length, failed };
  }
}
