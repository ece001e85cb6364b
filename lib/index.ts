/** torchcap's public API. */
export { Tensor, manualSeed, noGrad, isGradEnabled } from './tensor';
export type { DType, Device, TensorOptions, TypedArray, NestedArray } from './tensor';
export { versions, setNumThreads, getNumThreads, memory, torchcapVersion } from './runtime';
export type { Versions } from './runtime';
