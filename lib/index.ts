/**
 * torchcap's public API. The folders of lib/ in layers (see test/layers.test.ts and the README's
 * map): util/ and text/; core/ (the native seam); nn/, serialization/, distributed/; the book's
 * steps (vocabulary/, data/, evaluate/, prepare/, then model/, sample/, train/); the apps.
 */
export { Tensor, manualSeed, noGrad, isGradEnabled } from './core/tensor';
export type { DType, Device, TensorOptions, TypedArray, NestedArray } from './core/tensor';
export { versions, setNumThreads, getNumThreads, memory, torchcapVersion, cpuCache, emptyCpuCache } from './core/system';
export type { Versions, CpuCacheStats } from './core/system';
export { Executor } from './core/executor';

// nn: the native modules and their typed wrappers
export { Module } from './nn/module';
export { Linear, Embedding, BatchNorm1d } from './nn/layers';
export { LSTM, packPaddedSequence, padPackedSequence } from './nn/rnn';
export type { PackedSequence, LSTMState, LSTMOptions } from './nn/rnn';
export { ResNet, RESNET_DEPTHS, cpuBf16Support, blockedTrainSupport } from './nn/resnet';
export type { ResNetDepth, ResNetOptions } from './nn/resnet';
export { crossEntropy, crossEntropyAsync, backwardAsync } from './nn/functional';
export { Adam, SGD, Optimizer } from './nn/optim';
export type { AdamOptions, AdamHyperparameters } from './nn/optim';

// the book's pipeline, in the chapter's order
export { Vocabulary, PAD, START, END, UNK, readBookVocabularyPickle, loadVocabulary } from './vocabulary';
export { wordTokenize } from './text/tokenizer';
export { readCoco, readFlickr8k, readJsonl, readCaptions, CaptionCorpus, DatasetError } from './data';
export { decodeImage, toBatch, toBatchAsync, loadForInference, ImageError, IMAGENET_MEAN, IMAGENET_STD } from './data';
export type { RawImage, ImageSource } from './data';
export { CaptionLoader, epochOrder } from './data';
export { resizeImages } from './prepare';
export type { ResizeOptions, ResizeResult, ResizeProgress } from './prepare/resize';
export { CaptionEncoder, CaptionDecoder } from './model';
export type { EncoderOptions, DecoderOptions, BackboneMode, Autocast } from './model';
export { loadEncoder, loadDecoder, loadWeights, saveWeights, loadBackboneWeights, saveCheckpoint, latestCheckpoint, restoreCheckpoint } from './model';
export type { LoadEncoderOptions, CheckpointSet, TrainingPosition } from './model';
export { greedy, beamSearch, sampleIds, captionImages, evaluateModel } from './sample';
export type { SampleOptions, CaptionOutcome, CaptionImagesOptions, ModelEvaluation, UnscoredImage, EvaluateModelOptions } from './sample';
export { Trainer, train, formatLogLine, TRAIN_DEFAULTS } from './train';
export type { TrainOptions, TrainSummary, StepEvent, EvalEvent } from './train';
export { evaluateCaptions, evaluateCaptionsSync, CaptionEvaluator, EvaluationSet, evaluationSet, readEvaluationSet, writeEvaluationReport } from './evaluate';
export type { CaptionEvaluation, CaptionMetrics, CaptionResult, EvaluationImage, EvaluationSetOptions } from './evaluate';
export { ProcessGroup, distributedEnv, DistributedError } from './distributed';

// the apps
export { Captioner } from './captioner';
export type { CaptionerOptions } from './captioner';

// weight files
export { readTorchFile, readStateDict, readSafetensors, saveTorchFile, saveSafetensors, loadStateDict, UnpicklingError, CheckpointError } from './serialization';
