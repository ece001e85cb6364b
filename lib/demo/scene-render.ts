/** Drawing a demo scene: an SVG rendered by sharp (librsvg, anti-aliased) to JPEG or PNG. */
import { sharp } from '../util/sharp';
import { BACKGROUND, PALETTE, round2, type SceneObject } from './scene-layout';

// ---------------------------------------------------------------------------------------------
// Rendering

function shapeElement(o: SceneObject): string {
  const { cx, cy, radius: r } = o;
  const fill = PALETTE[o.color];
  const f = (x: number): string => round2(x).toString();
  switch (o.shape) {
    case 'circle':
      return `<circle cx="${f(cx)}" cy="${f(cy)}" r="${f(r)}" fill="${fill}"/>`;
    case 'square': {
      // A little smaller than the circle's box, for about the same area.
      const h = 0.9 * r;
      return `<rect x="${f(cx - h)}" y="${f(cy - h)}" width="${f(2 * h)}" height="${f(2 * h)}" fill="${fill}"/>`;
    }
    case 'triangle': {
      // Pointing up, base and height the full box; the centre is inside.
      return `<polygon points="${f(cx)},${f(cy - r)} ${f(cx + r)},${f(cy + r)} ${f(cx - r)},${f(cy + r)}" fill="${fill}"/>`;
    }
    case 'cross': {
      const t = 0.36 * r;
      const pts = [
        [cx - t, cy - r], [cx + t, cy - r], [cx + t, cy - t], [cx + r, cy - t], [cx + r, cy + t], [cx + t, cy + t],
        [cx + t, cy + r], [cx - t, cy + r], [cx - t, cy + t], [cx - r, cy + t], [cx - r, cy - t], [cx - t, cy - t],
      ];
      return `<polygon points="${pts.map(([x, y]) => `${f(x)},${f(y)}`).join(' ')}" fill="${fill}"/>`;
    }
  }
}

/** The SVG of a scene at `size` x `size`. */
export function sceneSvg(objects: readonly SceneObject[], size: number): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}" viewBox="0 0 ${size} ${size}">` +
    `<rect width="${size}" height="${size}" fill="${BACKGROUND}"/>${objects.map(shapeElement).join('')}</svg>`
  );
}

/** Renders a scene to an encoded image (3-channel sRGB, no metadata). */
export async function renderScene(objects: readonly SceneObject[], size: number, opts: { format?: 'jpeg' | 'png'; jpegQuality?: number } = {}): Promise<Buffer> {
  const img = sharp(Buffer.from(sceneSvg(objects, size))).removeAlpha();
  if ((opts.format ?? 'jpeg') === 'png') return img.png({ compressionLevel: 6, adaptiveFiltering: false }).toBuffer();
  return img.jpeg({ quality: opts.jpegQuality ?? 90, chromaSubsampling: '4:4:4' }).toBuffer();
}

