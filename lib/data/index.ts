/** The data path: caption datasets, image decoding, the image loop, the training loader. */
export { readCoco, readFlickr8k, readJsonl, readCaptions, CaptionCorpus, DatasetError } from './datasets';
export { decodeImage, toBatch, toBatchAsync, loadForInference, ImageError, IMAGENET_MEAN, IMAGENET_STD } from './images';
export type { RawImage, ImageSource } from './images';
export { decodeBatch, imageBatches, chunks, sourceLabel } from './image-batches';
export type { ImageItem, DecodeOptions, DecodedBatch } from './image-batches';
export { CaptionLoader, epochOrder, padCaptions } from './loader';
export type { Sample, Batch, LoaderOptions } from './loader';
