/**
 * The evaluation's HTML report (the shared self-contained writer, util/report.ts): the scores, the
 * images whose captions scored best and worst by CIDEr-D (each with its caption and references),
 * and the images that could not be read.
 */
import * as path from 'path';
import { writeReport, type ReportItem, type ReportResult, type ReportSection } from '../util/report';
import type { CaptionResult, ImageId } from './inputs';
import type { CaptionEvaluation, ImageScores } from './scores';
import type { EvaluationSet } from './set';

/** Images shown at each end of the ranking by default. */
export const REPORT_EXTREMES = 20;

export interface EvaluationReportOptions {
  /** Where to write the HTML. */
  file: string;
  set: EvaluationSet;
  evaluation: CaptionEvaluation;
  /** The captions scored (one per image of `evaluation`). */
  results: readonly CaptionResult[];
  /** Images of the set that could not be read, and why. */
  failed?: readonly { id: ImageId; path: string; reason: string }[];
  /** Lines under the title (the model, the settings). */
  notes?: readonly string[];
  /** Images shown at each end of the ranking (default 20). */
  count?: number;
}

/** The metrics in the toolkit's order, under its names. */
function metricTable(ev: CaptionEvaluation): Record<string, number> {
  const m = ev.metrics;
  const out: Record<string, number> = { Bleu_1: m.Bleu_1, Bleu_2: m.Bleu_2, Bleu_3: m.Bleu_3, Bleu_4: m.Bleu_4 };
  if (m.METEOR !== undefined) out.METEOR = m.METEOR;
  out.ROUGE_L = m.ROUGE_L;
  out.CIDEr = m.CIDEr;
  return out;
}

/** Writes the report and says what it wrote (images it could not embed are listed in the result). */
export function writeEvaluationReport(opts: EvaluationReportOptions): Promise<ReportResult> {
  const count = opts.count ?? REPORT_EXTREMES;
  const ev = opts.evaluation;
  const captions = new Map(opts.results.map((r) => [r.image_id, r.caption]));
  const images = new Map(opts.set.images.map((i) => [i.id, i]));
  const item = (s: ImageScores): ReportItem => {
    const img = images.get(s.image_id);
    return {
      image: img?.path ?? String(s.image_id),
      caption: captions.get(s.image_id) ?? '',
      references: opts.set.referencesOf(s.image_id),
      score: s.CIDEr,
      label: `image ${s.image_id}${img ? ` · ${path.basename(img.file)}` : ''}`,
    };
  };
  // Stable sorts: ties keep the evaluation order.
  const best = [...ev.perImage].sort((a, b) => b.CIDEr - a.CIDEr).slice(0, count);
  const worst = [...ev.perImage].sort((a, b) => a.CIDEr - b.CIDEr).slice(0, count);
  const sections: ReportSection[] = [
    { title: `The ${best.length} best captions by CIDEr-D`, items: best.map(item) },
    { title: `The ${worst.length} worst captions by CIDEr-D`, items: worst.map(item) },
  ];
  const failed = opts.failed ?? [];
  if (failed.length > 0) {
    sections.push({
      title: `${failed.length} image${failed.length > 1 ? 's' : ''} not scored`,
      notes: ['missing from the images folder or unreadable: left out of the scores'],
      table: { columns: ['image id', 'file', 'reason'], rows: failed.map((f) => [String(f.id), f.path, f.reason.startsWith(`${f.path}: `) ? f.reason.slice(f.path.length + 2) : f.reason]) },
    });
  }
  const total = ev.images + failed.length;
  return writeReport({
    file: opts.file,
    title: `torchcap evaluation: ${path.basename(opts.set.source)}`,
    notes: [...(opts.notes ?? []), `${ev.images} of ${total} images scored${failed.length ? ` (${failed.length} not read, listed at the end)` : ''}; references: ${opts.set.source}`],
    metrics: metricTable(ev),
    sections,
    scoreLabel: 'CIDEr-D',
    imageWidth: 256,
  });
}
