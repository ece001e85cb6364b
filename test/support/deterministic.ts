/**
 * Deterministic weights and inputs, identical to scripts/fixtures/deterministic.py: Python and
 * torchcap build the same models without shipping weight files.
 */
import { Tensor, noGrad } from '../../lib';

function values(shape: number[], i: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.arange(n, undefined, 1, { dtype: 'float64' }).mul(0.1).add(0.7 * i).sin().reshape(shape);
}

function scaleFor(name: string, shape: number[]): number | 'var' | 'bnweight' | null {
  if (name.endsWith('num_batches_tracked')) return null;
  if (name.endsWith('running_var')) return 'var';
  if (name.endsWith('running_mean') || (shape.length === 1 && name.endsWith('bias'))) return 0.1;
  if (shape.length === 1 && name.endsWith('weight')) return 'bnweight';
  const fanIn = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : shape[0];
  return 1 / Math.sqrt(fanIn);
}

/** Fills every entry of a state dict, in order, as deterministic.fill does in Python. */
export function fill(state: Map<string, Tensor>): void {
  noGrad(() => {
    let i = 0;
    for (const [name, t] of state) {
      const s = scaleFor(name, t.shape);
      if (s !== null) {
        let v = values(t.shape, i);
        if (s === 'var') v = v.abs().mul(0.5).add(1);
        else if (s === 'bnweight') v = v.mul(0.1).add(1);
        else v = v.mul(s);
        t.copyFrom(v.to(t.dtype));
      }
      i++;
    }
  });
}

export function inputTensor(shape: number[], offset = 0): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return Tensor.arange(n, undefined, 1, { dtype: 'float64' }).mul(0.37).add(offset).sin().reshape(shape).to('float32');
}

export interface Json { shape: number[]; data: number[] }
export interface Summary { shape: number[]; sum: number; sumsq: number; head: number[] }

export function fromJson(j: Json): Tensor {
  return Tensor.from(Float64Array.from(j.data), { shape: j.shape }).to('float32');
}

/** Largest |a - b| / (|b| + atol) over elements. */
export function maxRelErr(a: Tensor, b: Tensor, atol = 1e-6): number {
  return a.to('float64').sub(b.to('float64')).abs().div(b.to('float64').abs().add(atol)).max().item();
}

export function summarize(t: Tensor): Summary {
  const d = t.to('float64').detach();
  return { shape: d.shape, sum: d.sum().item(), sumsq: d.mul(d).sum().item(), head: Array.from(d.flatten().slice(0, 0, 64).toTypedArray() as Float64Array) };
}
