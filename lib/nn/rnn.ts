/** LSTM and packed sequences (torch.nn.LSTM, torch.nn.utils.rnn). */
import { Tensor } from '../core/tensor';
import { NativeLeaf, checkMode, toHandles, wrapRecord, type Mode, type Wrapped } from './module';
import { dispatch } from '../core/executor';
import type { LSTMPackedInput, LSTMPackedOutput, NativePackedSequence } from '../core/binding';
import { checkInt, expected } from '../util/checks';
import { native } from '../core/native';

/**
 * A batch of variable-length sequences packed time-major, as PyTorch's PackedSequence:
 * `data` [sum(lengths), *], `batchSizes` int64 [T] (on the CPU), and the permutation that sorted
 * the batch by length (null when the input was already sorted).
 */
export interface PackedSequence {
  data: Tensor;
  batchSizes: Tensor;
  sortedIndices: Tensor | null;
  unsortedIndices: Tensor | null;
}

export type LSTMState = { h: Tensor; c: Tensor };

function lengthsTensor(lengths: number[] | Tensor): number[] {
  if (lengths instanceof Tensor) return Array.from(lengths.to('int64').toTypedArray() as BigInt64Array, Number);
  if (!Array.isArray(lengths)) expected('an array of lengths or an int64 Tensor', 'lengths', lengths);
  return lengths;
}

/**
 * Packs a padded batch ([B, T, *] with batchFirst, else [T, B, *]). Lengths must be positive,
 * at most T, and in decreasing order unless `enforceSorted` is false.
 */
export function packPaddedSequence(input: Tensor, lengths: number[] | Tensor, opts: { batchFirst?: boolean; enforceSorted?: boolean } = {}): PackedSequence {
  const batchFirst = opts.batchFirst ?? false;
  const enforceSorted = opts.enforceSorted ?? true;
  if (!(input instanceof Tensor)) expected('a Tensor', 'input', input);
  const ls = lengthsTensor(lengths);
  const shape = input.shape;
  if (shape.length < 2) throw new RangeError(`packPaddedSequence needs an input of at least 2 dimensions, got shape [${shape.join(', ')}]`);
  const [batch, time] = batchFirst ? [shape[0], shape[1]] : [shape[1], shape[0]];
  if (ls.length !== batch) throw new RangeError(`lengths has ${ls.length} entries but the batch has ${batch} sequences`);
  ls.forEach((l, i) => {
    checkInt(l, `lengths[${i}]`);
    if (l < 1) throw new RangeError(`lengths[${i}] is ${l}: every sequence needs at least one step`);
    if (l > time) throw new RangeError(`lengths[${i}] is ${l} but the sequences are only ${time} steps long`);
    if (enforceSorted && i > 0 && l > ls[i - 1]) {
      throw new RangeError(`lengths must be in decreasing order (lengths[${i - 1}] = ${ls[i - 1]} < lengths[${i}] = ${l}); sort the batch or pass enforceSorted: false`);
    }
  });
  const lt = Tensor.from(ls, { dtype: 'int64' });
  return wrapRecord(native.packPaddedSequence(input.handle, lt.handle, batchFirst, enforceSorted));
}

/** The inverse of packPaddedSequence: the padded batch and the lengths. */
export function padPackedSequence(
  packed: PackedSequence,
  opts: { batchFirst?: boolean; paddingValue?: number; totalLength?: number } = {},
): { padded: Tensor; lengths: number[] } {
  const { padded, lengths } = native.padPackedSequence(toHandles<NativePackedSequence>(packed), opts.batchFirst ?? false, opts.paddingValue ?? 0, opts.totalLength ?? null);
  return { padded: new Tensor(padded), lengths: Array.from(new Tensor(lengths).toTypedArray() as BigInt64Array, Number) };
}

export interface LSTMOptions {
  numLayers?: number;
  batchFirst?: boolean;
  dropout?: number;
}

/**
 * torch.nn.LSTM (parameters `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`, ...).
 * forward takes a padded tensor ([B, T, in] with batchFirst) or a PackedSequence.
 */
export class LSTM extends NativeLeaf<'lstm'> {
  readonly numLayers: number;
  readonly batchFirst: boolean;

  constructor(readonly inputSize: number, readonly hiddenSize: number, opts: LSTMOptions = {}) {
    const numLayers = checkInt(opts.numLayers ?? 1, 'numLayers', 1);
    super(
      native.createModule('lstm', {
        inputSize: checkInt(inputSize, 'inputSize', 1),
        hiddenSize: checkInt(hiddenSize, 'hiddenSize', 1),
        numLayers,
        batchFirst: opts.batchFirst ?? false,
        dropout: opts.dropout ?? 0,
      }),
    );
    this.numLayers = numLayers;
    this.batchFirst = opts.batchFirst ?? false;
  }

  /** Over a packed batch: the packed outputs (hidden states, same layout) and the final state. */
  forwardPacked(input: PackedSequence, mode: Mode, state?: LSTMState): { output: PackedSequence; state: LSTMState } {
    return packedResult(wrapRecord(this.native.forwardPacked(packedInput(input, state), { train: checkMode(mode).train })));
  }
  async forwardPackedAsync(input: PackedSequence, mode: Mode, state?: LSTMState): Promise<{ output: PackedSequence; state: LSTMState }> {
    const options = { train: checkMode(mode).train };
    return packedResult(wrapRecord(await dispatch(() => this.native.forwardPackedAsync(packedInput(input, state), options))));
  }

  /**
   * Over a padded tensor: outputs [B, T, hidden] (batchFirst) and the final state ([layers, B,
   * hidden] each). `rows: true` (used by sampling): one step (T = 1) on the CPU in eval mode without
   * gradients computes its gate products row by row, as Linear's `rows` does.
   */
  forward(input: Tensor, mode: Mode, state?: LSTMState, opts: { rows?: boolean } = {}): { output: Tensor; state: LSTMState } {
    const { output, h, c } = this.run({ input, h: state?.h, c: state?.c }, { train: checkMode(mode).train, fast: opts.rows === true });
    return { output, state: { h, c } };
  }
  async forwardAsync(input: Tensor, mode: Mode, state?: LSTMState, opts: { rows?: boolean } = {}): Promise<{ output: Tensor; state: LSTMState }> {
    const { output, h, c } = await this.runAsync({ input, h: state?.h, c: state?.c }, { train: checkMode(mode).train, fast: opts.rows === true });
    return { output, state: { h, c } };
  }
}

function packedInput(p: PackedSequence, state?: LSTMState): LSTMPackedInput {
  return toHandles<LSTMPackedInput>({ ...p, h: state?.h, c: state?.c });
}

function packedResult({ h, c, ...output }: Wrapped<LSTMPackedOutput>): { output: PackedSequence; state: LSTMState } {
  return { output, state: { h, c } };
}
