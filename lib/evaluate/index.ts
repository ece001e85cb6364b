/**
 * COCO caption evaluation in TypeScript, without the model: the metrics computed as coco-caption
 * computes them (scores.ts and the scorers), its inputs (inputs.ts), the set of images an
 * evaluation captions (set.ts) and its HTML report (report.ts). Captioning that set with a model is
 * sample/evaluate.ts.
 */
export { METRIC_NAMES, SPICE_UNAVAILABLE, CaptionEvaluator, evaluateCaptions, evaluateCaptionsSync } from './scores';
export type { CaptionMetrics, ImageScores, CaptionEvaluation, EvaluateOptions, EvaluateWithMeteorOptions } from './scores';
export { EvaluationSet, evaluationSet, readEvaluationSet, readSplitFile, compareImageIds, imageResolver, cocoImageFiles } from './set';
export type { EvaluationImage, EvaluationSetOptions } from './set';
export { writeEvaluationReport, REPORT_EXTREMES } from './report';
export type { EvaluationReportOptions } from './report';
export { americanize } from './americanize';
export { BLEU_SMALL, BLEU_TINY, bleuFromStats, computeBleu } from './bleu';
export type { BleuResult, BleuStats } from './bleu';
export { computeCiderD } from './cider';
export type { CiderOptions, CiderResult } from './cider';
export {
  EvaluationInputError, pairInputs, readJsonFile, readReferencesFile, readResultsFile, referencesFromCoco,
  resultsFromJson, resultsToJson, toReferenceMap,
} from './inputs';
export type { CaptionResult, CocoCaptions, ImageId, ReferenceMap } from './inputs';
export { computeMeteor, locateMeteor, meteorScoreLine } from './meteor';
export type { MeteorOptions, MeteorOutcome } from './meteor';
export { DROPPED_PUNCTUATION, ptbTokenLines, ptbTokens, tokenizeCaption, tokenizeCaptions } from './ptb-tokenizer';
export { computeRougeL, ROUGE_BETA, rougeL } from './rouge';
export type { RougeResult } from './rouge';
export { npMean } from './numeric';
export { pySplit } from '../util/python';
