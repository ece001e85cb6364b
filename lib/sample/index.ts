/** Sampling captions: greedy (the book's), beam search, the captioning loop over images, and a model's scores on an evaluation set. */
export { greedy, cutAtEnd } from './greedy';
export type { SampleOptions } from './greedy';
export { beamSearch } from './beam';
export { sampleIds, idsToCaption, captionBatch, captionImages, CAPTION_DEFAULTS } from './captions';
export type { CaptionModels, CaptionOutcome, CaptionImagesOptions } from './captions';
export { evaluateModel } from './evaluate';
export type { ModelEvaluation, UnscoredImage, EvaluateModelOptions } from './evaluate';
