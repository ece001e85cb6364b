/**
 * What a training run takes, and the book's defaults for it: one table that the Trainer and the
 * `train` command's flags both read.
 */
import type { ResNetDepth } from '../nn/resnet';
import type { BackboneMode, BackboneStage, Autocast } from '../model';
import type { Vocabulary } from '../vocabulary';
import { DEFAULT_THRESHOLD } from '../vocabulary';
import type { ProcessGroup } from '../distributed';
import { checkChoice, checkInt, expected, positiveNumber } from '../util/checks';
import { BACKBONE_STAGES } from '../model/encoder';

export interface TrainOptions {
  /** Folder of training images. */
  images: string;
  /** Captions: COCO JSON, Flickr8k token file (.txt, with `split`) or JSONL. */
  captions: string;
  split?: string;
  /** A vocabulary file (torchcap JSON or a JSON array of words), or one to use; built from the captions when absent. */
  vocab?: string | Vocabulary;
  threshold?: number;
  /** Folder for checkpoints, metrics and pictures. */
  out: string;
  epochs?: number;
  batchSize?: number;
  lr?: number;
  logEvery?: number;
  saveEvery?: number;
  backbone?: ResNetDepth;
  embedSize?: number;
  hiddenSize?: number;
  numLayers?: number;
  maxSeqLen?: number;
  backboneMode?: BackboneMode;
  fineTune?: BackboneStage[];
  /** torchvision ImageNet weights (.pth) for the backbone. */
  pretrained?: string;
  resize?: number;
  crop?: number;
  /** Convert embedded ICC profiles to sRGB (default false: ignored, as Pillow and the book do). */
  colorManaged?: boolean;
  seed?: number;
  cacheFeatures?: boolean;
  /** Continue from the newest checkpoint in `out`. */
  resume?: boolean;
  /** Score captions of a validation set every N steps (and at each epoch's end). */
  evalEvery?: number;
  valCaptions?: string;
  valImages?: string;
  /** Validation images scored at most (default 500). */
  valLimit?: number;
  beam?: number;
  /** Stop each epoch after this many steps (smoke runs, benchmarks). */
  maxStepsPerEpoch?: number;
  /** Batches decoded ahead. */
  prefetch?: number;
  /** 'cpu' (default), 'cuda', 'cuda:N' or 'auto'. */
  device?: string;
  /** The frozen backbone in mixed precision (see backboneAutocast in model/encoder.ts). */
  autocast?: Autocast;
  /** Data-parallel training: this process's group (see distributed/). Only rank 0 writes files. */
  group?: ProcessGroup;
  /** With a group: BatchNorm statistics over all ranks' batches (PyTorch's SyncBatchNorm). */
  syncBn?: boolean;
  quiet?: boolean;
  signal?: AbortSignal;
}

/** The book's settings (5 epochs, batch 128, Adam lr 0.001, ResNet-152, ...) and torchcap's for what the book does not have. */
export const TRAIN_DEFAULTS = Object.freeze({
  epochs: 5,
  batchSize: 128,
  lr: 0.001,
  logEvery: 10,
  saveEvery: 1000,
  backbone: 152 as ResNetDepth,
  backboneMode: 'book' as BackboneMode,
  embedSize: 256,
  hiddenSize: 512,
  numLayers: 1,
  maxSeqLen: 20,
  resize: 256,
  crop: 224,
  seed: 0,
  threshold: DEFAULT_THRESHOLD,
  valLimit: 500,
  beam: 1,
  device: 'cpu',
});

export type ResolvedTrainOptions = TrainOptions & typeof TRAIN_DEFAULTS;

/**
 * The options with the defaults filled in, counts and sizes checked: a batch size of 0 looped
 * forever on empty batches, a fraction cut batches at odd places, a log or save interval of 0
 * silently logged or saved nothing. `label` names an option in the errors (the `train` command
 * passes its flags' names).
 */
export function resolveTrainOptions(opts: TrainOptions, label: (option: keyof TrainOptions) => string = (o) => o): ResolvedTrainOptions {
  const o = { ...TRAIN_DEFAULTS, ...Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined)) } as ResolvedTrainOptions;
  const counts = [['epochs', 1], ['batchSize', 1], ['logEvery', 1], ['saveEvery', 1], ['embedSize', 1], ['hiddenSize', 1], ['numLayers', 1], ['resize', 1], ['crop', 1], ['seed', 0], ['threshold', 1], ['valLimit', 1], ['beam', 1]] as const;
  for (const [name, min] of counts) checkInt(o[name], label(name), min);
  for (const name of ['maxStepsPerEpoch', 'prefetch', 'evalEvery'] as const) if (o[name] !== undefined) checkInt(o[name], label(name), 1);
  positiveNumber(o.lr, label('lr'));
  // PyTorch refuses it too ("Expected more than 1 value per channel when training").
  if ((o.batchSize as number) === 1 && !o.syncBn) throw new RangeError(`${label('batchSize')} 1 cannot train: the encoder's BatchNorm1d takes its statistics over the batch and needs 2 images or more`);
  if (o.crop > o.resize) throw new RangeError(`${label('crop')} (${o.crop}) is larger than ${label('resize')} (${o.resize}): a random crop is taken inside the resized image`);
  if (o.fineTune !== undefined) {
    if (!Array.isArray(o.fineTune)) expected('an array of backbone stages', label('fineTune'), o.fineTune);
    for (const stage of o.fineTune) checkChoice(stage, label('fineTune'), BACKBONE_STAGES);
    if (o.fineTune.length && o.cacheFeatures) {
      throw new TypeError(`${label('fineTune')} trains backbone stages, which ${label('cacheFeatures')} computes once before training: use one or the other`);
    }
  }
  if (o.evalEvery !== undefined && o.valCaptions === undefined) {
    throw new TypeError(`${label('evalEvery')} scores captions of validation images: it needs ${label('valCaptions')} (a COCO captions file of them)`);
  }
  return o;
}
