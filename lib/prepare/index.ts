/** One-off preparation before training: downloading COCO, resizing a folder of images as the book does. */
export { downloadFile, DownloadError } from './download';
export type { DownloadOptions, DownloadProgress, DownloadResult } from './download';
export { extractZip } from './unzip';
export type { ExtractOptions, ExtractProgress, ExtractResult } from './unzip';
export { downloadCoco, cocoBaseUrl, COCO_FILES, COCO_PARTS, COCO_BASE_URL } from './coco';
export type { CocoPart, CocoFile, CocoOptions, CocoProgress, CocoPartResult } from './coco';
export { resizeImages } from './resize';
