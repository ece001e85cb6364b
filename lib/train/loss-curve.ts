/** The loss curve as an SVG picture, drawn from the metrics JSONL file the training loop writes. */
import * as fs from 'fs';
import { writeFileAtomicSync } from '../util/files';

interface Point {
  step: number;
  loss: number;
}

function readPoints(metricsFile: string): Point[] {
  if (!fs.existsSync(metricsFile)) return [];
  const points: Point[] = [];
  for (const line of fs.readFileSync(metricsFile, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line);
      if (e.type === 'step' && Number.isFinite(e.loss)) points.push({ step: e.globalStep, loss: e.loss });
    } catch {
      // a line cut short by a killed run: skip it
    }
  }
  return points;
}

/** An SVG line chart of loss against optimizer step. */
export function lossCurveSvg(points: Point[], title = 'training loss'): string {
  const W = 640;
  const H = 360;
  const m = { l: 56, r: 16, t: 32, b: 40 };
  const xs = points.map((p) => p.step);
  const ys = points.map((p) => p.loss);
  const x0 = Math.min(...xs, 0);
  const x1 = Math.max(...xs, 1);
  const y0 = Math.min(...ys, 0);
  const y1 = Math.max(...ys, 1);
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
  const path = points.map((p, i) => `${i ? 'L' : 'M'}${px(p.step).toFixed(1)},${py(p.loss).toFixed(1)}`).join(' ');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => y0 + f * (y1 - y0));
  const grid = ticks
    .map((v) => `<line x1="${m.l}" x2="${W - m.r}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#ddd"/><text x="${m.l - 6}" y="${(py(v) + 4).toFixed(1)}" text-anchor="end" font-size="11">${v.toFixed(2)}</text>`)
    .join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`,
    grid,
    `<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#333"/>`,
    `<text x="${m.l}" y="${H - 12}" font-size="11">${x0}</text><text x="${W - m.r}" y="${H - 12}" text-anchor="end" font-size="11">step ${x1}</text>`,
    points.length ? `<path d="${path}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>` : '',
    '</svg>',
    '',
  ].join('\n');
}

/** Writes `svgFile` from `metricsFile`; returns the number of points drawn. */
export function writeLossCurve(metricsFile: string, svgFile: string): number {
  const points = readPoints(metricsFile);
  writeFileAtomicSync(svgFile, lossCurveSvg(points));
  return points.length;
}
