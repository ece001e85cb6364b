/**
 * Beam search, batched over images: K hypotheses per image, scored by the sum of word
 * log-probabilities divided by length^lengthPenalty (0 by default: the most probable sequence). A
 * hypothesis ends at `<end>`; when every image holds K ended hypotheses, or after maxLen steps, the
 * best one wins. K = 1 gives the greedy caption.
 */
import { Tensor } from '../core/tensor';
import { checkInt } from '../util/checks';
import type { CaptionDecoder } from '../model';
import type { LSTMState } from '../nn/rnn';
import { END } from '../vocabulary';
import { cutAtEnd, noGradEmbed, noGradStep, rowsOf, type SampleOptions } from './greedy';

interface Hypothesis {
  ids: number[];
  score: number;
}

/** Beam search for a batch of features [B, E]: the best ids per image, cut after <end>. */
export async function beamSearch(decoder: CaptionDecoder, features: Tensor, opts: SampleOptions = {}): Promise<number[][]> {
  const K = checkInt(opts.beam ?? 3, 'beam', 1);
  const maxLen = checkInt(opts.maxLen ?? decoder.maxSeqLen, 'maxLen', 1);
  const alpha = opts.lengthPenalty ?? 0;
  const B = features.shape[0];
  const V = decoder.vocabSize;
  const finished: Hypothesis[][] = Array.from({ length: B }, () => []);
  const norm = (h: Hypothesis) => h.score / Math.pow(h.ids.length, alpha);

  // Step 0 from the image features: the K best first words of each image.
  let r = await noGradStep(decoder, features);
  const first = r.logits.logSoftmax(1).topk(Math.min(K, V), 1);
  const firstScores = rowsOf(first.values);
  const firstIds = rowsOf(first.indices);
  // With K > V there are fewer first words than beams: the rest start dead, so that every image
  // keeps exactly K rows.
  let live: Hypothesis[][] = firstScores.map((row, b) =>
    Array.from({ length: K }, (_, k) => (k < row.length ? { ids: [firstIds[b][k]], score: row[k] } : { ids: [END], score: -Infinity })),
  );
  // Each image's state repeated for its K beams: rows b*K .. b*K+K-1.
  // Index and score tensors live where the model computes.
  const device = features.device;
  const repeat = Tensor.from(
    Array.from({ length: B * K }, (_, i) => Math.floor(i / K)),
    { dtype: 'int64', device },
  );
  let state: LSTMState = { h: r.state.h.indexSelect(1, repeat), c: r.state.c.indexSelect(1, repeat) };

  const retire = (): void => {
    live = live.map((beams, b) =>
      beams.map((h) => {
        if (h.ids[h.ids.length - 1] === END && h.score > -Infinity) {
          finished[b].push({ ...h });
          return { ids: h.ids, score: -Infinity };
        }
        return h;
      }),
    );
  };
  retire();

  for (let t = 1; t < maxLen; t++) {
    if (finished.every((f) => f.length >= K)) break;
    const last = Tensor.from(live.flatMap((beams) => beams.map((h) => h.ids[h.ids.length - 1])), { dtype: 'int64', device });
    r = await noGradStep(decoder, await noGradEmbed(decoder, last), state);
    const scores = Tensor.from(live.flatMap((beams) => beams.map((h) => (h.score === -Infinity ? -1e30 : h.score))), { dtype: 'float32', device });
    const total = r.logits.logSoftmax(1).add(scores.unsqueeze(1)).reshape(B, K * V);
    const best = total.topk(K, 1);
    const bestScores = rowsOf(best.values);
    const bestIdx = rowsOf(best.indices);
    const pick: number[] = [];
    live = live.map((beams, b) =>
      bestIdx[b].map((flat, k) => {
        const from = Math.floor(flat / V);
        pick.push(b * K + from);
        const dead = beams[from].score === -Infinity;
        return { ids: [...beams[from].ids, flat % V], score: dead ? -Infinity : bestScores[b][k] };
      }),
    );
    const sel = Tensor.from(pick, { dtype: 'int64', device });
    state = { h: r.state.h.indexSelect(1, sel), c: r.state.c.indexSelect(1, sel) };
    retire();
  }
  return live.map((beams, b) => {
    const pool = finished[b].length ? finished[b] : beams.filter((h) => h.score > -Infinity);
    const candidates = pool.length ? pool : beams;
    return cutAtEnd(candidates.reduce((x, y) => (norm(y) > norm(x) ? y : x)).ids);
  });
}

