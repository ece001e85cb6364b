/**
 * The demo's HTML report: one self-contained file showing each held-out image with its generated
 * caption and its references, plus a table of metrics.
 *
 * - Self-contained: images are embedded as base64 `data:` URIs (JPEG, PNG, GIF or WebP, recognised
 *   by their first bytes), so the file can be moved or mailed; nothing is fetched.
 * - Inert: every piece of text (title, captions, references, notes, metric names, file names) is
 *   HTML-escaped, and a Content-Security-Policy allows no script and no request at all, only inline
 *   styles and `data:` images.
 * - Small images are shown enlarged with `image-rendering: pixelated`, so 64 x 64 scenes stay sharp.
 * - Written atomically (a temporary file in the same folder, then a rename): a reader never sees a
 *   half-written report, and a failed write leaves the previous one in place.
 *
 * An image that cannot be read, or is not one of the four formats, gets a visible placeholder with
 * the reason; it is also listed in the result, so the caller can say so.
 */
import { promises as fsp } from 'fs';
import * as path from 'path';
import { writeFileAtomic } from '../util/files';

export interface ReportItem {
  /** Path of the image file. */
  image: string;
  /** The generated caption. */
  caption: string;
  /** The reference captions. */
  references: readonly string[];
  /** A score of this caption (e.g. its BLEU-4), shown with `scoreLabel`. */
  score?: number;
  /** Shown above the caption; default the image's file name. */
  label?: string;
}

/** A table of the report: a caption, column heads and rows (numbers formatted as the metrics are). */
export interface ReportTable {
  caption: string;
  columns: readonly string[];
  rows: readonly (readonly (string | number)[])[];
}

export interface ReportOptions {
  /** Where to write the HTML; its folder is created when missing. */
  file: string;
  title: string;
  items: readonly ReportItem[];
  /** Shown as a table, in the given order. */
  metrics: Readonly<Record<string, number>>;
  /** Lines shown under the title (settings, timings, ...). */
  notes?: readonly string[];
  /** More tables, shown after the metrics in the given order. */
  tables?: readonly ReportTable[];
  /** Name of the per-item score. Default "score". */
  scoreLabel?: string;
  /** Displayed width of each image in CSS pixels. Default 192 (three times a 64-pixel scene). */
  imageWidth?: number;
}

export interface ReportResult {
  file: string;
  /** Size of the HTML file in bytes. */
  bytes: number;
  /** Images that could not be embedded, with the reason. */
  missingImages: { image: string; reason: string }[];
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/** The MIME type of an encoded image from its first bytes, or null when it is none of JPEG, PNG, GIF, WebP. */
export function imageMimeType(data: Uint8Array): string | null {
  const b = data;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47 && b[4] === 0x0d && b[5] === 0x0a && b[6] === 0x1a && b[7] === 0x0a) return 'image/png';
  if (b.length >= 6 && String.fromCharCode(...b.subarray(0, 6)).match(/^GIF8[79]a$/)) return 'image/gif';
  if (b.length >= 12 && String.fromCharCode(...b.subarray(0, 4)) === 'RIFF' && String.fromCharCode(...b.subarray(8, 12)) === 'WEBP') return 'image/webp';
  return null;
}

/** Lower case, words only: how a caption is compared with its references for the "matches" mark. */
function normalizeCaption(text: string): string {
  return text.toLowerCase().replace(/[^\p{L}\p{N}\s]+/gu, ' ').replace(/\s+/g, ' ').trim();
}

function formatNumber(x: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'n/a' : String(x);
  if (Number.isInteger(x)) return String(x);
  return x.toFixed(4);
}

type Embedded = { ok: true; uri: string } | { ok: false; reason: string };

async function embed(file: string): Promise<Embedded> {
  let data: Buffer;
  try {
    data = await fsp.readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'file not found' : `cannot read it: ${(e as Error).message}` };
  }
  const mime = imageMimeType(data);
  if (!mime) return { ok: false, reason: 'not a JPEG, PNG, GIF or WebP image' };
  return { ok: true, uri: `data:${mime};base64,${data.toString('base64')}` };
}

async function embedAll(files: readonly string[], concurrency = 16): Promise<Map<string, Embedded>> {
  const unique = [...new Set(files)];
  const out = new Map<string, Embedded>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < unique.length) {
      const f = unique[next++];
      out.set(f, await embed(f));
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, unique.length) }, worker));
  return out;
}

const STYLE = `
  body { font: 15px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #222; background: #fafafa; }
  h1 { font-size: 1.6em; margin: 0 0 .5em; }
  .notes { color: #555; margin: 0 0 1em; padding-left: 1.2em; }
  table.metrics { border-collapse: collapse; margin: 0 0 2em; }
  table.metrics th, table.metrics td { border: 1px solid #ccc; padding: .3em .8em; text-align: left; }
  table.metrics td.value { text-align: right; font-variant-numeric: tabular-nums; }
  table.metrics caption { text-align: left; font-weight: 600; padding: 0 0 .3em; }
  .items { display: grid; grid-template-columns: repeat(auto-fill, minmax(var(--card), 1fr)); gap: 1.2em; }
  figure.item { margin: 0; padding: .8em; background: #fff; border: 1px solid #ddd; border-radius: 6px; }
  figure.item img { display: block; height: auto; image-rendering: crisp-edges; image-rendering: pixelated; border: 1px solid #bbb; }
  .missing { display: flex; align-items: center; justify-content: center; aspect-ratio: 1; background: #eee; color: #a00; border: 1px dashed #a00; font-size: .85em; padding: .5em; text-align: center; }
  .label { color: #777; font-size: .8em; margin: .5em 0 .2em; }
  .caption { font-weight: 600; margin: .2em 0; }
  .match { color: #0a7d22; font-weight: normal; font-size: .85em; }
  .score { color: #555; font-size: .85em; margin: .2em 0; }
  ol.refs { margin: .3em 0 0; padding-left: 1.4em; color: #444; font-size: .9em; }
`;

/** The report's HTML, given the embedded images (by path). */
function renderHtml(opts: ReportOptions, images: ReadonlyMap<string, Embedded>): string {
  const width = opts.imageWidth ?? 192;
  const scoreLabel = opts.scoreLabel ?? 'score';
  const parts: string[] = [];
  parts.push(
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n',
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">\n`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n',
    `<title>${escapeHtml(opts.title)}</title>\n<style>${STYLE}</style>\n</head>\n`,
    `<body style="--card: ${width + 30}px">\n<h1>${escapeHtml(opts.title)}</h1>\n`,
  );
  if (opts.notes && opts.notes.length > 0) {
    parts.push(`<ul class="notes">\n${opts.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join('\n')}\n</ul>\n`);
  }
  const metrics = Object.entries(opts.metrics);
  if (metrics.length > 0) {
    parts.push('<table class="metrics">\n<thead><tr><th>Metric</th><th>Value</th></tr></thead>\n<tbody>\n');
    for (const [name, value] of metrics) parts.push(`<tr><td>${escapeHtml(name)}</td><td class="value">${escapeHtml(formatNumber(value))}</td></tr>\n`);
    parts.push('</tbody>\n</table>\n');
  }
  for (const t of opts.tables ?? []) {
    const cell = (v: string | number): string => (typeof v === 'number' ? `<td class="value">${escapeHtml(formatNumber(v))}</td>` : `<td>${escapeHtml(v)}</td>`);
    parts.push(`<table class="metrics">\n<caption>${escapeHtml(t.caption)}</caption>\n<thead><tr>${t.columns.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr></thead>\n<tbody>\n`);
    for (const row of t.rows) parts.push(`<tr>${row.map(cell).join('')}</tr>\n`);
    parts.push('</tbody>\n</table>\n');
  }
  parts.push(`<section class="items">\n`);
  for (const item of opts.items) {
    const name = path.basename(item.image);
    const label = item.label ?? name;
    const img = images.get(item.image)!;
    const picture = img.ok
      ? `<img src="${img.uri}" width="${width}" alt="${escapeHtml(name)}">`
      : `<div class="missing" style="width: ${width}px">${escapeHtml(`image not shown (${img.reason}): ${item.image}`)}</div>`;
    const caption = normalizeCaption(item.caption);
    const matches = caption !== '' && item.references.some((r) => normalizeCaption(r) === caption);
    parts.push(
      `<figure class="item">${picture}<figcaption>`,
      `<p class="label">${escapeHtml(label)}</p>`,
      `<p class="caption">${escapeHtml(item.caption)}${matches ? ' <span class="match">(matches a reference)</span>' : ''}</p>`,
    );
    if (item.score !== undefined) parts.push(`<p class="score">${escapeHtml(scoreLabel)} ${escapeHtml(formatNumber(item.score))}</p>`);
    if (item.references.length > 0) parts.push(`<ol class="refs">${item.references.map((r) => `<li>${escapeHtml(r)}</li>`).join('')}</ol>`);
    parts.push('</figcaption></figure>\n');
  }
  parts.push('</section>\n</body>\n</html>\n');
  return parts.join('');
}

/** Writes the report (see the module comment) and says what it wrote. */
export async function writeReport(opts: ReportOptions): Promise<ReportResult> {
  if (typeof opts.file !== 'string' || !opts.file) throw new TypeError('writeReport: file is required');
  const width = opts.imageWidth ?? 192;
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`writeReport: imageWidth must be a positive integer, got ${String(width)}`);
  const images = await embedAll(opts.items.map((i) => i.image));
  const html = renderHtml(opts, images);
  const file = path.resolve(opts.file);
  await fsp.mkdir(path.dirname(file), { recursive: true });
  await writeFileAtomic(file, html);
  const missingImages: ReportResult['missingImages'] = [];
  for (const [image, e] of images) if (!e.ok) missingImages.push({ image, reason: e.reason });
  return { file, bytes: Buffer.byteLength(html), missingImages };
}
