/**
 * sharp, loaded on its first call rather than when torchcap is required: loading it (and libvips)
 * takes tens of milliseconds, and captioning JPEGs never calls it (they are decoded natively).
 * Called exactly as sharp's default export is.
 */
import type SharpDefault from 'sharp';

type Sharp = typeof SharpDefault;
let loaded: Sharp | undefined;

export function sharp(...args: Parameters<Sharp>): ReturnType<Sharp> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= require('sharp') as Sharp;
  return loaded(...args);
}
