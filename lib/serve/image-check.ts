/** What the server checks in an upload before the model sees it: its format and pixel count, from the header. */
import type { Metadata } from 'sharp';
import { sharp } from '../util/sharp';
import { HttpError } from './http';

/** Image formats the server decodes (sharp's raster formats; SVG and PDF are refused). */
export const ACCEPTED_FORMATS: readonly string[] = Object.freeze(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif']);

/** Width, height and format from the image header, without decoding the pixels. */
export async function checkImage(image: Buffer, maxPixels: number): Promise<void> {
  let meta: Metadata;
  try {
    meta = await sharp(image, { limitInputPixels: false, failOn: 'none' }).metadata();
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    if (/unsupported image format/i.test(msg)) {
      throw new HttpError(415, `not an image: the body is in no format the server reads (${ACCEPTED_FORMATS.join(', ')})`);
    }
    throw new HttpError(422, `cannot read the image header (${msg})`);
  }
  if (!meta.format || !ACCEPTED_FORMATS.includes(meta.format)) {
    throw new HttpError(415, `${String(meta.format).toUpperCase()} images are not accepted; send one of ${ACCEPTED_FORMATS.join(', ')}`);
  }
  const { width, height } = meta;
  if (!width || !height) throw new HttpError(422, `the ${meta.format} header declares no image size`);
  const pixels = width * (meta.pageHeight ?? height);
  if (pixels > maxPixels) {
    throw new HttpError(
      413,
      `the image is ${width}x${meta.pageHeight ?? height} = ${pixels} pixels, more than the ${maxPixels} this server decodes (refused from its header, before decoding); send a smaller image`,
    );
  }
}

/** Error text from captionEach without the `<N-byte buffer>: ` source name. */
export function imageProblem(error: string): string {
  return error.replace(/^<[^>]*>: /, '');
}


