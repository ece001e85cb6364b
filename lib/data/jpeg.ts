/**
 * Native JPEG decoding for the training loader (libjpeg-turbo, see native/image.cc): files that
 * are JPEGs of the expected size are decoded as Pillow decodes them (then its convert('RGB')),
 * cropped, flipped and normalized in one native pass on all cores; everything else goes through
 * decodeImage (images.ts), which gives Pillow's pixels too.
 */
import { Tensor } from '../core/tensor';
import { dispatch } from '../core/executor';
import { IMAGENET_MEAN, IMAGENET_STD } from './images';
import { native } from '../core/native';

/** Whether this build decodes and encodes JPEGs natively (libjpeg-turbo was found at build time). */
export function nativeJpeg(): boolean {
  return native.hasTurboJpeg;
}

/** A JPEG's size and components from its header; null when the header is unreadable, undefined without the native decoder. */
export function jpegHeader(bytes: Uint8Array): { width: number; height: number; components: number } | null | undefined {
  return native.jpegSize ? native.jpegSize(bytes) : undefined;
}

/** Whether `bytes` are a JPEG of size×size that the native path can take. */
export function isJpegOfSize(bytes: Uint8Array, size: number): boolean {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return false;
  const s = jpegHeader(bytes);
  return !!s && s.width === size && s.height === size;
}

/** Decodes the files into one normalized batch; rows follow the files that decoded. */
export async function decodeJpegBatch(
  files: Uint8Array[],
  layout: { size: number; crop: number; crops: [number, number][]; flips: boolean[] },
): Promise<{ batch: Tensor | null; failed: Map<number, string> }> {
  if (!native.decodeJpegBatch) throw new Error('this build has no native JPEG decoding (libjpeg-turbo was not found at build time)');
  const decode = native.decodeJpegBatch;
  const r = await dispatch(() =>
    decode(files, { size: layout.size, outH: layout.crop, outW: layout.crop, crops: layout.crops, flips: layout.flips, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] }),
  );
  return { batch: r.tensor ? new Tensor(r.tensor) : null, failed: new Map(r.failed) };
}
