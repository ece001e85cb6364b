/** Sampling captions: greedy (the book's), beam search, and the captioning loop over images. */
export { greedy, cutAtEnd } from './greedy';
export type { SampleOptions } from './greedy';
export { beamSearch } from './beam';
export { sampleIds, idsToCaption, captionBatch, captionImages, CAPTION_DEFAULTS } from './captions';
export type { CaptionModels, CaptionOutcome, CaptionImagesOptions } from './captions';
