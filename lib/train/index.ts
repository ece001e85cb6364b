/** Training: the loop, its step, its defaults, validation, metrics and the feature cache. */
export { Trainer, train } from './trainer';
export type { StepEvent, EvalEvent, TrainSummary, TrainerEvents } from './trainer';
export { TRAIN_DEFAULTS, resolveTrainOptions } from './options';
export type { TrainOptions, ResolvedTrainOptions } from './options';
export { trainStep } from './step';
export type { StepBatch, StepModels } from './step';
export { validationSet } from './validation';
export { MetricsLog, formatLogLine } from './metrics';
export { buildFeatureCache, backboneSignature, cachedEpoch } from './features';
export type { FeatureCache, FeatureCacheSettings, CachedBatch } from './features';
export { writeLossCurve, lossCurveSvg } from './loss-curve';
