/** Tensors: the class, its creation helpers' types, grad mode and the seed. */
export { Tensor, h, UNARY_OPS, BINARY_OPS, REDUCTIONS, DIM_REDUCTIONS } from './tensor';
export type { Device, TypedArray, NestedArray, TensorOptions } from './create';
export type { DType } from '../binding';
export { manualSeed, noGrad, dispatchWithGrad, isGradEnabled } from './grad';
