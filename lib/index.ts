/** torchcap's public API. */
export { Tensor, manualSeed, noGrad, isGradEnabled } from './tensor';
export type { DType, Device, TensorOptions, TypedArray, NestedArray } from './tensor';
export { versions, setNumThreads, getNumThreads, memory, torchcapVersion, cpuCache, emptyCpuCache } from './runtime';
export type { Versions } from './runtime';
export { Executor } from './executor';

// nn: the native modules and their typed wrappers
export { Module } from './nn/module';
export { Linear, Embedding, BatchNorm1d } from './nn/layers';
export { LSTM, packPaddedSequence, padPackedSequence } from './nn/rnn';
export type { PackedSequence, LSTMState, LSTMOptions } from './nn/rnn';
export { ResNet, RESNET_DEPTHS, cpuBf16Support } from './nn/resnet';
export type { ResNetDepth, ResNetOptions } from './nn/resnet';
export { crossEntropy, crossEntropyAsync, backwardAsync } from './nn/functional';
export { Adam, SGD, Optimizer } from './optim';

// the book's pipeline, one module per step
export { Vocabulary, PAD, START, END, UNK } from './vocabulary';
export { wordTokenize } from './text/tokenizer';
export { readCoco, readFlickr8k, readJsonl, readCaptions, CaptionCorpus, DatasetError } from './data/datasets';
export { decodeImage, toBatch, toBatchAsync, loadForInference, ImageError, IMAGENET_MEAN, IMAGENET_STD } from './data/images';
export type { RawImage, ImageSource } from './data/images';
export { CaptionLoader, epochOrder } from './data/loader';
export { CaptionEncoder, CaptionDecoder } from './model';
export type { EncoderOptions, DecoderOptions, BackboneMode } from './model';
export { Trainer, train, formatLogLine } from './train';
export type { TrainOptions, TrainSummary, StepEvent, EvalEvent } from './train';
export { greedy, beamSearch, sampleIds } from './sample';
export type { SampleOptions } from './sample';
export { Captioner, loadVocabulary } from './captioner';
export type { CaptionerOptions, CaptionOutcome } from './captioner';
export { loadEncoder, loadDecoder, loadWeights, saveWeights, loadBackboneWeights, saveCheckpoint, latestCheckpoint, restoreCheckpoint } from './checkpoint';
export { evaluateCaptions, evaluateCaptionsSync, CaptionEvaluator } from './evaluate';
export { ProcessGroup, distributedEnv, DistributedError } from './distributed';

// weight files
export { readTorchFile, readStateDict, readSafetensors, saveTorchFile, saveSafetensors, loadStateDict, readBookVocabularyPickle, UnpicklingError, CheckpointError } from './serialization';
