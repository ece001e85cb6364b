/**
 * The demo's HTML report: the shared report writer (util/report.ts) with the demo's look, small
 * scenes shown enlarged and pixelated so that they stay sharp.
 */
import { writeReport as writeHtmlReport, type ReportOptions, type ReportResult } from '../util/report';

export { escapeHtml, imageMimeType } from '../util/report';
export type { ReportItem, ReportOptions, ReportResult, ReportSection, ReportTable } from '../util/report';

/** Writes the demo's report: every held-out scene with its caption and references, the metrics, and any extra sections. */
export function writeReport(opts: ReportOptions): Promise<ReportResult> {
  return writeHtmlReport({ pixelated: true, imageWidth: 192, ...opts });
}
