/**
 * Native JPEG decoding for the training loader (libjpeg-turbo, see native/image.cc): files that
 * are JPEGs of the expected size are decoded as Pillow decodes them (then its convert('RGB')),
 * cropped, flipped and normalized in one native pass on all cores; everything else goes through
 * decodeImage (images.ts), which gives Pillow's pixels too.
 */
import { native } from '../binding';
import { Tensor } from '../tensor';
import { dispatch } from '../executor';
import { IMAGENET_MEAN, IMAGENET_STD } from './images';

export const nativeJpeg = native.hasTurboJpeg;

/** Whether `bytes` are a JPEG of size×size that the native path can take. */
export function isJpegOfSize(bytes: Uint8Array, size: number): boolean {
  if (!native.jpegSize || bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return false;
  const s = native.jpegSize(bytes);
  return s !== null && s.width === size && s.height === size;
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
