/**
 * COCO caption scores, computed as coco-caption (tylin/coco-caption, packaged as pycocoevalcap)
 * computes them: PTB tokenization, BLEU-1..4, ROUGE-L and CIDEr-D, plus METEOR when Java and the
 * METEOR 1.5 jar are available. SPICE is never computed.
 *
 * {@link evaluateCaptionsSync} is pure and synchronous (for a training loop scoring in-memory
 * captions; {@link CaptionEvaluator} does the same with the references tokenized once);
 * {@link evaluateCaptions} also runs METEOR when it can.
 *
 * Python 3 pycocoevalcap is the reference: BLEU and CIDEr-D split tokenized captions with Python 3's
 * `str.split()` (so the no-break space the tokenizer puts in `22 3/4` separates two words there),
 * ROUGE-L with `split(" ")`.
 */
import { computeBleu, type BleuStats } from './bleu';
import { computeCiderD } from './cider';
import { type CaptionResult, type CocoCaptions, type ImageId, type ReferenceMap, pairInputs, toReferenceMap } from './inputs';
import { computeMeteor, type MeteorOptions } from './meteor';
import { tokenizeCaption, tokenizeCaptions } from './ptb-tokenizer';
import { computeRougeL } from './rouge';

/** The metric names coco-caption reports, in its order. */
export const METRIC_NAMES = ['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr', 'SPICE'] as const;

export interface CaptionMetrics {
  Bleu_1: number;
  Bleu_2: number;
  Bleu_3: number;
  Bleu_4: number;
  ROUGE_L: number;
  /** CIDEr-D, under the name the toolkit prints. */
  CIDEr: number;
  /** Present only when METEOR ran. */
  METEOR?: number;
}

export interface ImageScores extends CaptionMetrics {
  image_id: ImageId;
}

export interface CaptionEvaluation {
  metrics: CaptionMetrics;
  /**
   * Scores of each image, in evaluation order. ROUGE_L, CIDEr and METEOR are the toolkit's per-image
   * values (CIDEr with the corpus document frequencies). Bleu_n is BLEU of that image's counts
   * alone, i.e. the score the toolkit gives when the image is evaluated by itself; the toolkit's own
   * per-image BLEU entries are single n-gram precisions that a list duplication shifts onto the
   * wrong images, so they are not reproduced.
   */
  perImage: ImageScores[];
  /** The counts behind BLEU, as the toolkit prints them, and their length ratio. */
  bleuStats: BleuStats & { ratio: number };
  /** Number of images evaluated. */
  images: number;
  /** Metrics not computed, each with the reason. */
  unavailable: { METEOR?: string; SPICE: string };
  /** The tokenized captions the scores were computed from (when `keepTokenized` is set). */
  tokenized?: { references: string[][]; candidates: string[] };
}

export interface EvaluateOptions {
  /** Keep the tokenized captions in the result. */
  keepTokenized?: boolean;
}

export interface EvaluateWithMeteorOptions extends EvaluateOptions, MeteorOptions {
  /** Set false to skip METEOR even when it is available. */
  meteor?: boolean;
}

export const SPICE_UNAVAILABLE = 'SPICE needs the SPICE 1.0 jar and Stanford CoreNLP models, which torchcap does not run';

type References = ReferenceMap | CocoCaptions | ReadonlyMap<ImageId, readonly string[]>;

interface Prepared {
  ids: ImageId[];
  refs: string[][];
  hyps: string[];
}

/** Pairs and tokenizes the inputs: references in one tokenizer run, candidates in another, as the toolkit does. */
function prepare(references: References, results: readonly CaptionResult[]): Prepared {
  const paired = pairInputs(toReferenceMap(references), results);
  const flat = paired.references.flat();
  const tokens = tokenizeCaptions(flat);
  const refs: string[][] = [];
  let at = 0;
  for (const caps of paired.references) {
    refs.push(tokens.slice(at, at + caps.length));
    at += caps.length;
  }
  return { ids: paired.ids, refs, hyps: tokenizeCaptions(paired.candidates) };
}

/**
 * Scores candidates against a fixed set of references, tokenizing the references once (for a
 * training loop that evaluates the same validation images repeatedly). Gives exactly what
 * {@link evaluateCaptionsSync} gives for the same inputs: after the toolkit's filtering, a caption's
 * tokens depend only on whether it ends the tokenizer's input, so each reference is tokenized as a
 * line followed by another, and the last reference of an evaluation is redone as the end of input.
 */
export class CaptionEvaluator {
  private readonly refs: ReferenceMap;
  private readonly tokenized = new Map<ImageId, string[]>();

  constructor(references: References) {
    this.refs = toReferenceMap(references);
    const all = [...this.refs.values()].flat();
    // One extra empty line, so that no reference is the last line of the input.
    const filtered = tokenizeCaptions([...all, '']);
    let at = 0;
    for (const [id, caps] of this.refs) {
      this.tokenized.set(id, filtered.slice(at, at + caps.length));
      at += caps.length;
    }
  }

  /** BLEU-1..4, ROUGE-L and CIDEr-D of `results` (one per image, any subset of the references' images). */
  evaluate(results: readonly CaptionResult[], opts: EvaluateOptions = {}): CaptionEvaluation {
    const paired = pairInputs(this.refs, results);
    const refs = paired.ids.map((id) => [...this.tokenized.get(id)!]);
    const last = refs[refs.length - 1];
    const lastRefs = paired.references[paired.references.length - 1];
    last[last.length - 1] = tokenizeCaption(lastRefs[lastRefs.length - 1], null);
    return score({ ids: paired.ids, refs, hyps: tokenizeCaptions(paired.candidates) }, opts, undefined, METEOR_SYNC_REASON);
  }
}

const METEOR_SYNC_REASON = 'METEOR runs a Java program, which evaluateCaptionsSync does not start; use evaluateCaptions';

function score(p: Prepared, opts: EvaluateOptions, meteor: { score: number; perImage: number[] } | undefined, meteorReason: string | undefined): CaptionEvaluation {
  const bleu = computeBleu(p.refs, p.hyps, 4);
  const rouge = computeRougeL(p.refs, p.hyps);
  const cider = computeCiderD(p.refs, p.hyps);
  const metrics: CaptionMetrics = {
    Bleu_1: bleu.scores[0],
    Bleu_2: bleu.scores[1],
    Bleu_3: bleu.scores[2],
    Bleu_4: bleu.scores[3],
    ROUGE_L: rouge.score,
    CIDEr: cider.score,
  };
  if (meteor !== undefined) metrics.METEOR = meteor.score;
  const perImage = p.ids.map((id, i): ImageScores => {
    const s: ImageScores = {
      image_id: id,
      Bleu_1: bleu.perImage[i][0],
      Bleu_2: bleu.perImage[i][1],
      Bleu_3: bleu.perImage[i][2],
      Bleu_4: bleu.perImage[i][3],
      ROUGE_L: rouge.perImage[i],
      CIDEr: cider.perImage[i],
    };
    if (meteor !== undefined) s.METEOR = meteor.perImage[i];
    return s;
  });
  const out: CaptionEvaluation = {
    metrics,
    perImage,
    bleuStats: { ...bleu.stats, ratio: bleu.ratio },
    images: p.ids.length,
    unavailable: { SPICE: SPICE_UNAVAILABLE },
  };
  if (meteorReason !== undefined) out.unavailable.METEOR = meteorReason;
  if (opts.keepTokenized) out.tokenized = { references: p.refs, candidates: p.hyps };
  return out;
}

/**
 * BLEU-1..4, ROUGE-L and CIDEr-D of `results` against `references`, synchronously. METEOR (a Java
 * program) is not run; `unavailable.METEOR` says so. Throws {@link EvaluationInputError} for
 * unusable inputs (an image id not in the references, two captions for one image, ...).
 */
export function evaluateCaptionsSync(references: References, results: readonly CaptionResult[], opts: EvaluateOptions = {}): CaptionEvaluation {
  return score(prepare(references, results), opts, undefined, METEOR_SYNC_REASON);
}

/**
 * All the metrics coco-caption reports that torchcap can compute: BLEU-1..4, ROUGE-L, CIDEr-D, and
 * METEOR when Java and the METEOR 1.5 jar (`opts.jar` or `TORCHCAP_METEOR_JAR`) are available.
 * Missing metrics are listed in `unavailable` with the reason, never given a value.
 */
export async function evaluateCaptions(references: References, results: readonly CaptionResult[], opts: EvaluateWithMeteorOptions = {}): Promise<CaptionEvaluation> {
  const p = prepare(references, results);
  if (opts.meteor === false) return score(p, opts, undefined, 'skipped on request');
  const m = await computeMeteor(p.refs, p.hyps, opts);
  return m.available ? score(p, opts, m, undefined) : score(p, opts, undefined, m.reason);
}
