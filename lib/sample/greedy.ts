/**
 * The book's greedy sampling, batched over images: feed the image feature, take the argmax word,
 * feed its embedding back, `maxLen` steps (the book: 20); the caption is the words up to `<end>`.
 * Decoding stops early once every caption of the batch has its `<end>`: the same captions, fewer
 * steps. Every step runs on a worker thread with gradients off, so the JS thread stays free.
 */
import { Tensor, dispatchWithGrad } from '../core/tensor';
import { checkInt } from '../util/checks';
import type { CaptionDecoder } from '../model';
import type { LSTMState } from '../nn/rnn';
import { END } from '../vocabulary';

export interface SampleOptions {
  /** Words per caption at most (the decoder's maxSeqLen by default). */
  maxLen?: number;
  /** Beam width; 1 = greedy. */
  beam?: number;
  /** Beam search: divide scores by length^lengthPenalty. */
  lengthPenalty?: number;
}

/** One decoder step without gradients, on a worker thread. @internal */
export const noGradStep = (decoder: CaptionDecoder, inputs: Tensor, state?: LSTMState) => dispatchWithGrad(false, () => decoder.stepAsync(inputs, state));
/** Word ids -> embeddings without gradients, on a worker thread. @internal */
export const noGradEmbed = (decoder: CaptionDecoder, ids: Tensor) => dispatchWithGrad(false, () => decoder.embedAsync(ids));

/** A 2-D tensor's rows as arrays of numbers. @internal */
export function rowsOf(t: Tensor): number[][] {
  return t.toArray() as number[][];
}

/** Word ids up to and including the first `<end>` (all of them if none). */
export function cutAtEnd(ids: number[]): number[] {
  const i = ids.indexOf(END);
  return i < 0 ? ids : ids.slice(0, i + 1);
}

/** The book's greedy sampling for a batch of features [B, E]: ids per image, cut after <end>. */
export async function greedy(decoder: CaptionDecoder, features: Tensor, opts: SampleOptions = {}): Promise<number[][]> {
  const maxLen = checkInt(opts.maxLen ?? decoder.maxSeqLen, 'maxLen', 1);
  let inputs = features;
  let state: LSTMState | undefined;
  const steps: Tensor[] = [];
  // Once every caption has produced <end>, later words would be cut anyway: stop there (the
  // captions are the book's; a trained model ends most captions well before maxLen).
  const ended = new Uint8Array(features.shape[0]);
  let open = ended.length;
  for (let t = 0; t < maxLen; t++) {
    const r = await noGradStep(decoder, inputs, state);
    state = r.state;
    const ids = r.logits.argmax(1);
    steps.push(ids);
    (ids.toTypedArray() as BigInt64Array).forEach((id, b) => {
      if (!ended[b] && Number(id) === END) {
        ended[b] = 1;
        open--;
      }
    });
    if (open === 0) break;
    inputs = await noGradEmbed(decoder, ids);
  }
  return rowsOf(Tensor.stack(steps, 1)).map(cutAtEnd);
}

