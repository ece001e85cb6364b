/**
 * Checkpoints, with the book's names and formats:
 *  - `encoder-{epoch}-{step}.ckpt`, `decoder-{epoch}-{step}.ckpt`: the models' state dicts
 *    (`torch.save(model.state_dict())` in the book), which Python's torch.load opens;
 *  - `training-{epoch}-{step}.ckpt` (torchcap's own): the optimizer in PyTorch's
 *    `optimizer.state_dict()` layout (so Python's `Adam.load_state_dict` accepts it), and where
 *    training stands, for `--resume`;
 *  - `latest.json`: the newest complete set, written last, so a run killed while saving resumes
 *    from the previous set.
 * Every file is written atomically (temporary file, fsync, rename).
 *
 * Loading accepts torchcap's files and the book's own (the same format and names), and
 * torchvision's ImageNet `.pth` files for the backbone.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tensor } from '../core/tensor';
import { CaptionEncoder, type EncoderOptions, type BackboneMode, type Autocast } from './encoder';
import { CaptionDecoder } from './decoder';
import type { ResNetDepth } from '../nn/resnet';
import type { Module } from '../nn/module';
import { Adam, type AdamHyperparameters } from '../nn/optim';
import { readStateDict, readTorchFile, saveTorchFile, loadStateDict, CheckpointError, OrderedDict, pyTuple, isPyTuple } from '../serialization';
import { writeFileAtomicSync, readJsonFile } from '../util/files';

export { CheckpointError } from '../serialization';

/** Loads a state dict file into a module, strictly: one error lists every missing, unexpected and mismatched name. */
export async function loadWeights(module: Module, file: string, opts: { ignore?: (name: string) => boolean } = {}): Promise<void> {
  const source = await readStateDict(file);
  loadStateDict(module.stateDict(), source, { strict: true, ignore: opts.ignore, source: file });
}

/** Loads torchvision's ImageNet ResNet weights (`resnet152-*.pth`) into an encoder's backbone; `fc.*` is ignored on purpose. */
export async function loadBackboneWeights(encoder: CaptionEncoder, file: string): Promise<void> {
  const source = await readStateDict(file);
  loadStateDict(encoder.resnet.stateDict(), source, { strict: true, ignore: (n) => n.startsWith('fc.'), source: file });
}

export async function saveWeights(module: Module, file: string): Promise<void> {
  await saveTorchFile(file, module.stateDict());
}

/** What a model's state dict says about its shape, so checkpoints load without flags. */
export function inferEncoderOptions(state: Layout, file = 'encoder checkpoint'): Required<Pick<EncoderOptions, 'backbone' | 'embedSize'>> {
  const lin = state.get('linear_layer.weight');
  // A decoder has a linear_layer too: the ResNet's first convolution tells an encoder apart.
  if (!lin || !state.has('resnet_module.0.weight')) {
    throw new CheckpointError('has no resnet_module.0.weight / linear_layer.weight: not an encoder checkpoint of the book (CNNModel)', { file });
  }
  const blocks = (stage: number) => new Set([...state.keys()].filter((k) => k.startsWith(`resnet_module.${stage}.`)).map((k) => k.split('.')[2])).size;
  const bottleneck = state.has('resnet_module.4.0.conv3.weight');
  const layout = [4, 5, 6, 7].map(blocks).join(',');
  const depths: Record<string, ResNetDepth> = { '2,2,2,2': 18, '3,4,6,3': bottleneck ? 50 : 34, '3,4,23,3': 101, '3,8,36,3': 152 };
  const backbone = depths[layout];
  if (!backbone) throw new CheckpointError(`has a ResNet with blocks per stage ${layout}, which is no ResNet-18/34/50/101/152`, { file });
  return { backbone, embedSize: lin.shape[0] };
}

export function inferDecoderOptions(state: Layout, file = 'decoder checkpoint') {
  const emb = state.get('embedding_layer.weight');
  const hh = state.get('lstm_layer.weight_hh_l0');
  if (!emb || !hh) throw new CheckpointError('has no embedding_layer.weight / lstm_layer.weight_hh_l0: not a decoder checkpoint of the book (LSTMModel)', { file });
  let numLayers = 0;
  while (state.has(`lstm_layer.weight_ih_l${numLayers}`)) numLayers++;
  return { vocabSize: emb.shape[0], embedSize: emb.shape[1], hiddenSize: hh.shape[1], numLayers };
}

export interface LoadEncoderOptions {
  backboneMode?: BackboneMode;
  /** Checked against the checkpoint when given. */
  backbone?: ResNetDepth;
  /** Where the encoder computes: 'cpu' (default), 'cuda', 'cuda:N' or 'auto'. */
  device?: string;
  /** The frozen backbone in mixed precision (see backboneAutocast in encoder.ts). */
  autocast?: Autocast;
}

/** Names and shapes of a state dict's tensors: the tensors themselves, or a file's layout before they are read. */
type Layout = ReadonlyMap<string, { readonly shape: readonly number[] }>;

/**
 * Reads a state dict file into a module built for it by `build` (from the file's layout, before
 * any storage is read): each storage goes straight into the module's tensor where it can, the rest
 * are copied; strictly checked, every name and shape. The module is built uninitialised by the
 * callers: the strict load overwrites every weight, or the module is dropped with the error.
 */
async function loadInto<M extends Module>(file: string, build: (layout: Layout) => M): Promise<M> {
  let module: M | undefined;
  const state = await readStateDict(file, { into: (layout) => (module = build(layout)).stateDict() });
  try {
    module ??= build(state); // formats read without a layout first (safetensors)
    loadStateDict(module.stateDict(), state, { strict: true, source: file });
  } finally {
    for (const t of state.values()) t.dispose();
  }
  return module;
}

/**
 * Builds an encoder shaped by its checkpoint, on its device, and loads it (torchcap's or the
 * book's file). With backboneMode 'fast' the fold is built once, on a native thread, so the event
 * loop stays free and the first caption does not pay for it.
 */
export async function loadEncoder(file: string, opts: LoadEncoderOptions = {}): Promise<CaptionEncoder> {
  const encoder = await loadInto(file, (layout) => {
    const shape = inferEncoderOptions(layout, file);
    if (opts.backbone !== undefined && opts.backbone !== shape.backbone) {
      throw new CheckpointError(`holds a ResNet-${shape.backbone} but --backbone says resnet${opts.backbone}`, { file });
    }
    return new CaptionEncoder({ ...shape, backboneMode: opts.backboneMode ?? 'eval', device: opts.device, autocast: opts.autocast, init: false });
  });
  await encoder.prepareAsync();
  return encoder;
}

export async function loadDecoder(file: string, opts: { maxSeqLen?: number; device?: string } = {}): Promise<CaptionDecoder> {
  return loadInto(file, (layout) => new CaptionDecoder({ ...inferDecoderOptions(layout, file), maxSeqLen: opts.maxSeqLen, device: opts.device }));
}

// ---------- training state ----------

/** Where training stands at a checkpoint. */
export interface TrainingPosition {
  /** 0-based epoch being trained. */
  epoch: number;
  /** 0-based step within the epoch that the checkpoint follows (the next one is step + 1). */
  step: number;
  /** Optimizer steps taken in all. */
  globalStep: number;
}

export interface CheckpointSet {
  encoder: string;
  decoder: string;
  training: string;
  progress: TrainingPosition;
}

export const LATEST = 'latest.json';

/** The optimizer as PyTorch's `Adam.state_dict()` lays it out. */
function optimizerState(opt: Adam): Map<string, unknown> {
  const state = new Map<number, Map<string, unknown>>();
  opt.state().forEach((s, i) => {
    if (s) state.set(i, new Map<string, unknown>([['step', Tensor.from(s.step)], ['exp_avg', s.expAvg], ['exp_avg_sq', s.expAvgSq]]));
  });
  const hp = opt.hyperparameters;
  const group = new Map<string, unknown>([
    ['lr', hp.lr],
    ['betas', pyTuple(hp.beta1, hp.beta2)],
    ['eps', hp.eps],
    ['weight_decay', hp.weightDecay],
    ['amsgrad', false],
    ['maximize', false],
    ['foreach', null],
    ['capturable', false],
    ['differentiable', false],
    ['fused', false],
    ['params', opt.params.map((_, i) => i)],
  ]);
  return new Map<string, unknown>([
    ['state', state],
    ['param_groups', [group]],
  ]);
}

/**
 * Adam's lr, betas, eps and weight decay from a saved `param_groups` (what is absent keeps its
 * value: files written before betas, eps and weight decay were saved hold their defaults there).
 */
function adamHyperparameters(groups: unknown, file: string): Partial<AdamHyperparameters> {
  const g = Array.isArray(groups) && groups[0] instanceof Map ? (groups[0] as Map<string, unknown>) : undefined;
  if (!g) throw new CheckpointError('has no optimizer param_groups', { file });
  const out: Partial<AdamHyperparameters> = {};
  const num = (key: string): number | undefined => {
    const v = g.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number') throw new CheckpointError(`has an optimizer ${key} that is no number (${String(v)})`, { file });
    return v;
  };
  out.lr = num('lr');
  out.eps = num('eps');
  out.weightDecay = num('weight_decay');
  const betas = g.get('betas');
  if (betas !== undefined) {
    if (!isPyTuple(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')) throw new CheckpointError('has optimizer betas that are no pair of numbers', { file });
    [out.beta1, out.beta2] = betas as readonly number[];
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

/** Writes the three files of a checkpoint, then `latest.json`. Names use 1-based epoch and step, as the book's. */
export async function saveCheckpoint(
  dir: string,
  models: { encoder: CaptionEncoder; decoder: CaptionDecoder; optimizer: Adam },
  progress: TrainingPosition,
  extra: Record<string, unknown> = {},
): Promise<CheckpointSet> {
  fs.mkdirSync(dir, { recursive: true });
  const tag = `${progress.epoch + 1}-${progress.step + 1}`;
  const set: CheckpointSet = {
    encoder: `encoder-${tag}.ckpt`,
    decoder: `decoder-${tag}.ckpt`,
    training: `training-${tag}.ckpt`,
    progress,
  };
  await saveWeights(models.encoder, path.join(dir, set.encoder));
  await saveWeights(models.decoder, path.join(dir, set.decoder));
  await saveTorchFile(
    path.join(dir, set.training),
    new Map<string, unknown>([
      ['format', 'torchcap-training'],
      ['version', 1],
      ['epoch', progress.epoch],
      ['step', progress.step],
      ['global_step', progress.globalStep],
      ['optimizer', optimizerState(models.optimizer)],
      ['extra', JSON.stringify(extra)],
    ]),
  );
  writeFileAtomicSync(path.join(dir, LATEST), JSON.stringify(set, null, 2) + '\n');
  return set;
}

/** Temporary files of atomic writes (`.NAME.PID.RANDOM.tmp`), which a killed run leaves behind. */
const TEMPORARY = /^\..+\.\d+\.[0-9a-z]+\.tmp$/;

/**
 * Removes the temporary files a killed run left in `dir` (a checkpoint each: 45 MB with
 * ResNet-18, 230 MB with ResNet-152). Only for a folder no other process is writing to.
 */
export function removeTemporaries(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const gone = fs.readdirSync(dir).filter((name) => TEMPORARY.test(name));
  for (const name of gone) fs.rmSync(path.join(dir, name), { force: true });
  return gone;
}

/** The newest complete checkpoint set in `dir`, or null when there is none. */
export function latestCheckpoint(dir: string): CheckpointSet | null {
  const file = path.join(dir, LATEST);
  if (!fs.existsSync(file)) return null;
  const set = readJsonFile(file, 'checkpoint index', CheckpointError) as CheckpointSet;
  for (const k of ['encoder', 'decoder', 'training'] as const) {
    if (typeof set[k] !== 'string' || !fs.existsSync(path.join(dir, set[k]))) {
      throw new CheckpointError(`names ${k} file ${String(set[k])}, which is missing`, { file });
    }
  }
  return set;
}

/** Restores models and optimizer from a checkpoint set; returns where training stood and the extra data saved with it. */
export async function restoreCheckpoint(
  dir: string,
  set: CheckpointSet,
  models: { encoder: CaptionEncoder; decoder: CaptionDecoder; optimizer: Adam },
): Promise<{ progress: TrainingPosition; extra: Record<string, unknown> }> {
  await loadWeights(models.encoder, path.join(dir, set.encoder));
  await loadWeights(models.decoder, path.join(dir, set.decoder));
  const file = path.join(dir, set.training);
  const t = (await readTorchFile(file)) as Map<string, unknown>;
  if (!(t instanceof Map) || t.get('format') !== 'torchcap-training') throw new CheckpointError('is not a torchcap training state file', { file });
  const opt = t.get('optimizer') as Map<string, unknown>;
  const state = opt.get('state') as Map<number, Map<string, unknown>>;
  const n = models.optimizer.params.length;
  const entries = Array.from({ length: n }, (_, i) => {
    const s = state.get(i);
    if (!s) return null;
    return { step: (s.get('step') as Tensor).item(), expAvg: s.get('exp_avg') as Tensor, expAvgSq: s.get('exp_avg_sq') as Tensor };
  });
  if ([...state.keys()].some((k) => typeof k !== 'number' || k >= n)) {
    throw new CheckpointError(`holds optimizer state for ${state.size} parameters, but the optimizer has ${n}`, { file });
  }
  models.optimizer.loadState(entries);
  models.optimizer.hyperparameters = adamHyperparameters(opt.get('param_groups'), file);
  const num = (k: string) => {
    const v = t.get(k);
    if (typeof v !== 'number') throw new CheckpointError(`has no number '${k}'`, { file });
    return v;
  };
  let extra: Record<string, unknown> = {};
  if (typeof t.get('extra') === 'string') extra = JSON.parse(t.get('extra') as string);
  return { progress: { epoch: num('epoch'), step: num('step'), globalStep: num('global_step') }, extra };
}

export { OrderedDict };
