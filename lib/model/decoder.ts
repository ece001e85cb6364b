/**
 * The book's decoder (`LSTMModel`), with the book's parameter names so its checkpoints load by name:
 *
 *   [feature, emb(<start>), emb(w1) ...] packed -> LSTM [*, 512] -> Linear [*, V]
 */
import { Tensor } from '../core/tensor';
import { resolveDevice } from '../core/device';
import { checkInt } from '../util/checks';
import { Module, checkMode, type Mode } from '../nn/module';
import { Linear, Embedding } from '../nn/layers';
import { LSTM, packPaddedSequence, type LSTMState } from '../nn/rnn';

/** Words a sampled caption has at most, as the book's `max_seq_len`. */
export const DEFAULT_MAX_SEQ_LEN = 20;

export interface DecoderOptions {
  vocabSize: number;
  embedSize?: number;
  hiddenSize?: number;
  numLayers?: number;
  maxSeqLen?: number;
  /** Where the decoder computes: 'cpu' (default), 'cuda', 'cuda:N' or 'auto'. */
  device?: string;
  /**
   * false: leave the embedding's and the output layer's weights uninitialised, for a checkpoint
   * about to overwrite every one of them (the loaders do this); default true, random initialisation.
   */
  init?: boolean;
}

/** The book's LSTMModel. */
export class CaptionDecoder extends Module {
  readonly embedding: Embedding;
  readonly lstm: LSTM;
  readonly linear: Linear;
  readonly vocabSize: number;
  readonly embedSize: number;
  readonly hiddenSize: number;
  readonly maxSeqLen: number;

  constructor(opts: DecoderOptions) {
    super();
    this.vocabSize = checkInt(opts.vocabSize, 'vocabSize', 5);
    this.embedSize = checkInt(opts.embedSize ?? 256, 'embedSize', 1);
    this.hiddenSize = checkInt(opts.hiddenSize ?? 512, 'hiddenSize', 1);
    this.maxSeqLen = checkInt(opts.maxSeqLen ?? DEFAULT_MAX_SEQ_LEN, 'maxSeqLen', 1);
    this.embedding = this.register('embedding_layer', new Embedding(this.vocabSize, this.embedSize, { init: opts.init }));
    this.lstm = this.register('lstm_layer', new LSTM(this.embedSize, this.hiddenSize, { numLayers: opts.numLayers ?? 1, batchFirst: true }));
    this.linear = this.register('linear_layer', new Linear(this.hiddenSize, this.vocabSize, { init: opts.init }));
    const device = resolveDevice(opts.device ?? 'cpu');
    if (device !== 'cpu') super.to(device);
  }

  // The [sync] twins (forward, step, embed) stay: noGrad() takes a synchronous function, and
  // scripts and tests compare them with PyTorch step by step.

  /**
   * Teacher-forced logits for a batch sorted by length (longest first):
   * features [B, E], captions int64 [B, T] (padded), lengths (each <= T) -> [sum(lengths), V],
   * in the order of pack_padded_sequence(captions, lengths, batch_first=True).data.
   */
  forward(features: Tensor, captions: Tensor, lengths: number[], mode: Mode): Tensor {
    const packed = this.packInputs(features, this.embedding.forward(captions), lengths);
    const { output } = this.lstm.forwardPacked(packed, checkMode(mode));
    return this.linear.forward(output.data);
  }
  async forwardAsync(features: Tensor, captions: Tensor, lengths: number[], mode: Mode): Promise<Tensor> {
    const packed = this.packInputs(features, await this.embedding.forwardAsync(captions), lengths);
    const { output } = await this.lstm.forwardPackedAsync(packed, checkMode(mode));
    return this.linear.forwardAsync(output.data);
  }

  private packInputs(features: Tensor, embeddings: Tensor, lengths: number[]) {
    const inputs = Tensor.cat([features.unsqueeze(1), embeddings], 1); // [B, T + 1, E]
    return packPaddedSequence(inputs, lengths, { batchFirst: true });
  }

  /**
   * One LSTM step of sampling: inputs [B, E] -> logits [B, V] and the new state. Without gradients
   * on the CPU the LSTM's gates and the logits are computed row by row (Linear's `rows`): each
   * caption's words do not depend on the other images in its batch.
   */
  step(inputs: Tensor, state?: LSTMState): { logits: Tensor; state: LSTMState } {
    const r = this.lstm.forward(inputs.unsqueeze(1), { train: false }, state, { rows: true });
    return { logits: this.linear.forward(r.output.squeeze(1), { rows: true }), state: r.state };
  }
  async stepAsync(inputs: Tensor, state?: LSTMState): Promise<{ logits: Tensor; state: LSTMState }> {
    const r = await this.lstm.forwardAsync(inputs.unsqueeze(1), { train: false }, state, { rows: true });
    return { logits: await this.linear.forwardAsync(r.output.squeeze(1), { rows: true }), state: r.state };
  }

  /** Word ids [B] -> embeddings [B, E]. */
  embed(ids: Tensor): Tensor {
    return this.embedding.forward(ids);
  }
  embedAsync(ids: Tensor): Promise<Tensor> {
    return this.embedding.forwardAsync(ids);
  }
}
