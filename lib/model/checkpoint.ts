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
import { Adam, type AdamHyperparameters, type AdamParamState } from '../nn/optim';
import { readStateDict, readTorchFile, saveTorchFile, loadStateDict, CheckpointError, OrderedDict, pyTuple, isPyTuple, typeName } from '../serialization';
import { writeFileAtomicSync, readJsonFile } from '../util/files';

export { CheckpointError } from '../serialization';

/** Loads a state dict file into a module, strictly: one error lists every missing, unexpected and mismatched name. */
export async function loadWeights(module: Module, file: string, opts: { ignore?: (name: string) => boolean } = {}): Promise<void> {
  const source = await readStateDict(file);
  loadStateDict(module.stateDict(), source, { strict: true, ignore: opts.ignore, source: file });
}

/**
 * Loads torchvision's ImageNet ResNet weights (`resnet152-*.pth`) into an encoder's backbone;
 * `fc.*` is ignored on purpose. A file of another ResNet is refused saying which one it holds.
 */
export async function loadBackboneWeights(encoder: CaptionEncoder, file: string): Promise<void> {
  const source = await readStateDict(file);
  try {
    checkBackbone(resnetLayout(source.keys(), 'layer', 1).depth, encoder.resnet.depth, file);
    loadStateDict(encoder.resnet.stateDict(), source, { strict: true, ignore: (n) => n.startsWith('fc.'), source: file });
  } finally {
    for (const t of source.values()) t.dispose();
  }
}

/** Refuses a file whose ResNet (when its names tell) is not the depth the encoder was built with. */
function checkBackbone(holds: ResNetDepth | undefined, builds: ResNetDepth, file: string): void {
  if (holds !== undefined && holds !== builds) {
    throw new CheckpointError(`holds a ResNet-${holds}, but the encoder is a ResNet-${builds} (--backbone resnet${builds})`, { file });
  }
}

/**
 * A ResNet's blocks per stage, from its parameter names: the four stages are `${prefix}${offset}`
 * to `${prefix}${offset + 3}` (`layer1` to `layer4` in torchvision's names, `resnet_module.4` to
 * `resnet_module.7` in the book's), and the depth they make, when they make one.
 */
function resnetLayout(names: Iterable<string>, prefix: string, offset: number): { layout: string; depth: ResNetDepth | undefined } {
  const blocks = [new Set<string>(), new Set<string>(), new Set<string>(), new Set<string>()];
  let bottleneck = false;
  for (const k of names) {
    for (let i = 0; i < 4; i++) {
      const stage = `${prefix}${i + offset}.`;
      if (!k.startsWith(stage)) continue;
      const rest = k.slice(stage.length);
      blocks[i].add(rest.split('.')[0]);
      if (i === 0 && rest.startsWith('0.conv3.')) bottleneck = true;
    }
  }
  const layout = blocks.map((b) => b.size).join(',');
  const depths: Record<string, ResNetDepth> = { '2,2,2,2': 18, '3,4,6,3': bottleneck ? 50 : 34, '3,4,23,3': 101, '3,8,36,3': 152 };
  return { layout, depth: depths[layout] };
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
  const { layout, depth: backbone } = resnetLayout(state.keys(), 'resnet_module.', 4);
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
  return loadInto(file, (layout) => new CaptionDecoder({ ...inferDecoderOptions(layout, file), maxSeqLen: opts.maxSeqLen, device: opts.device, init: false }));
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
 * value: files written before betas, eps and weight decay were saved hold their defaults there),
 * each checked as the optimizer checks it.
 */
function adamHyperparameters(groups: unknown, file: string): Partial<AdamHyperparameters> {
  const g = Array.isArray(groups) && groups[0] instanceof Map ? (groups[0] as Map<string, unknown>) : undefined;
  if (!g) throw new CheckpointError(`has no optimizer param_groups (a list of dicts): optimizer.param_groups is ${typeName(groups)}`, { file });
  const out: Partial<AdamHyperparameters> = {};
  const num = (key: string, ok: (v: number) => boolean, want: string): number | undefined => {
    const v = g.get(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'number') throw new CheckpointError(`has an optimizer ${key} that is no number (${typeName(v)})`, { file });
    if (!ok(v)) throw new CheckpointError(`has an optimizer ${key} of ${v}; it must be ${want}`, { file });
    return v;
  };
  out.lr = num('lr', (v) => v > 0, 'positive');
  out.eps = num('eps', (v) => v >= 0, '0 or more');
  out.weightDecay = num('weight_decay', (v) => v >= 0, '0 or more');
  const betas = g.get('betas');
  if (betas !== undefined) {
    if (!isPyTuple(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')) throw new CheckpointError('has optimizer betas that are no pair of numbers', { file });
    if (!betas.every((b) => (b as number) >= 0 && (b as number) < 1)) throw new CheckpointError(`has optimizer betas (${betas.join(', ')}) outside [0, 1)`, { file });
    [out.beta1, out.beta2] = betas as readonly number[];
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}

interface TrainingState {
  entries: (AdamParamState | null)[];
  hyperparameters: Partial<AdamHyperparameters>;
  progress: TrainingPosition;
  extra: Record<string, unknown>;
  /** The tensors read, to dispose once copied. */
  tensors: Tensor[];
}

/**
 * Reads a training state file and checks all of it against the optimizer (`params`: its
 * parameters), before anything is changed: CheckpointErrors name the file and the field.
 */
async function readTrainingState(file: string, params: readonly Tensor[]): Promise<TrainingState> {
  const t = await readTorchFile(file);
  const tensors: Tensor[] = [];
  const collect = (v: unknown): void => {
    if (v instanceof Tensor) tensors.push(v);
    else if (v instanceof Map) v.forEach(collect);
  };
  collect(t);
  try {
    if (!(t instanceof Map) || t.get('format') !== 'torchcap-training') throw new CheckpointError('is not a torchcap training state file', { file });
    const bad = (field: string, why: string): never => {
      throw new CheckpointError(`${field} ${why}`, { file });
    };
    /** 'is missing', or what the value is instead of `want`. */
    const isNot = (v: unknown, want: string): string => (v === undefined ? 'is missing' : `is ${typeName(v)}, not ${want}`);
    const opt = t.get('optimizer');
    if (!(opt instanceof Map)) return bad('optimizer', isNot(opt, 'a dict (Adam.state_dict())'));
    const state = opt.get('state');
    if (!(state instanceof Map)) return bad('optimizer.state', isNot(state, 'a dict'));
    const n = params.length;
    for (const k of state.keys()) {
      if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k >= n) {
        return bad('optimizer.state', `holds state for parameter ${typeof k === 'number' ? k : typeName(k)}, but the optimizer has ${n} parameters (0 to ${n - 1})`);
      }
    }
    const entries = params.map((p, i): AdamParamState | null => {
      const s = state.get(i);
      if (s === undefined) return null;
      const at = `optimizer.state[${i}]`;
      if (!(s instanceof Map)) return bad(at, `is ${typeName(s)}, not a dict`);
      const stepValue = s.get('step');
      // PyTorch >= 1.12 saves the step as a one-element tensor, earlier versions as an int.
      let step: number;
      if (stepValue instanceof Tensor) {
        if (stepValue.numel !== 1) return bad(`${at}.step`, `is a tensor of ${stepValue.numel} elements, not one`);
        step = stepValue.item();
      } else if (typeof stepValue === 'number') {
        step = stepValue;
      } else {
        return bad(`${at}.step`, isNot(stepValue, 'a number or a one-element tensor'));
      }
      if (!Number.isSafeInteger(step) || step < 0) bad(`${at}.step`, `is ${step}, not a count of steps`);
      const moment = (key: string): Tensor => {
        const m = s.get(key);
        if (!(m instanceof Tensor)) return bad(`${at}.${key}`, isNot(m, 'a tensor'));
        if (m.shape.length !== p.shape.length || m.shape.some((d, j) => d !== p.shape[j])) {
          return bad(`${at}.${key}`, `has shape [${m.shape.join(', ')}] but parameter ${i} has [${p.shape.join(', ')}]`);
        }
        if (m.dtype !== 'float32' && m.dtype !== 'float64' && m.dtype !== 'float16' && m.dtype !== 'bfloat16') return bad(`${at}.${key}`, `is ${m.dtype}, not a float tensor`);
        return m;
      };
      return { step, expAvg: moment('exp_avg'), expAvgSq: moment('exp_avg_sq') };
    });
    const hyperparameters = adamHyperparameters(opt.get('param_groups'), file);
    const count = (k: string): number => {
      const v = t.get(k);
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) return bad(k, v === undefined ? 'is missing' : `is ${typeName(v)} ${String(v).slice(0, 40)}, not a count (an integer >= 0)`);
      return v;
    };
    const progress = { epoch: count('epoch'), step: count('step'), globalStep: count('global_step') };
    let extra: Record<string, unknown> = {};
    const text = t.get('extra');
    if (text !== undefined) {
      if (typeof text !== 'string') return bad('extra', `is ${typeName(text)}, not a JSON string`);
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (e) {
        return bad('extra', `is not valid JSON: ${(e as Error).message}`);
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return bad('extra', 'is JSON but not an object');
      extra = parsed as Record<string, unknown>;
    }
    return { entries, hyperparameters, progress, extra, tensors };
  } catch (e) {
    for (const x of tensors) x.dispose();
    throw e;
  }
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

/**
 * Restores models and optimizer from a checkpoint set; returns where training stood and the extra
 * data saved with it. Every file is read and checked first (the training state field by field, the
 * weights strictly against the models, the encoder's ResNet against the one built): on any error,
 * a CheckpointError naming the file, and the models and the optimizer are unchanged.
 */
export async function restoreCheckpoint(
  dir: string,
  set: CheckpointSet,
  models: { encoder: CaptionEncoder; decoder: CaptionDecoder; optimizer: Adam },
): Promise<{ progress: TrainingPosition; extra: Record<string, unknown> }> {
  const encoderFile = path.join(dir, set.encoder);
  const decoderFile = path.join(dir, set.decoder);
  const training = await readTrainingState(path.join(dir, set.training), models.optimizer.params);
  const read: Map<string, Tensor>[] = [];
  try {
    const encoderState = await readStateDict(encoderFile);
    read.push(encoderState);
    const decoderState = await readStateDict(decoderFile);
    read.push(decoderState);
    checkBackbone(resnetLayout(encoderState.keys(), 'resnet_module.', 4).depth, models.encoder.resnet.depth, encoderFile);
    const loads: [Map<string, Tensor>, Map<string, Tensor>, string][] = [
      [models.encoder.stateDict(), encoderState, encoderFile],
      [models.decoder.stateDict(), decoderState, decoderFile],
    ];
    for (const [target, source, file] of loads) loadStateDict(target, source, { strict: true, source: file, dryRun: true });
    // Everything checked: now change the models and the optimizer.
    for (const [target, source, file] of loads) loadStateDict(target, source, { strict: true, source: file });
    models.optimizer.loadState(training.entries);
    models.optimizer.hyperparameters = training.hyperparameters;
  } finally {
    for (const state of read) for (const t of state.values()) t.dispose();
    for (const t of training.tensors) t.dispose();
  }
  return { progress: training.progress, extra: training.extra };
}

export { OrderedDict };
