/**
 * The demo's stand-in for ImageNet: a ResNet pretrained on the training scenes, to be frozen under
 * the captioner as the book freezes its ImageNet ResNet.
 *
 * The book's encoder is only as good as its frozen backbone. With no pretrained weights to
 * download, the demo used to freeze a randomly initialised ResNet; its pooled features keep colour,
 * size and place well enough but hardly any shape (a linear probe names the first object's shape
 * about as well as a guess), so the captions got the sentence right and the shapes wrong. Here the
 * ResNet first learns, as an image classifier, what each training scene's canonical caption says:
 * for every place from the left, the object's size, colour and shape (or that there is none), and
 * where a lone object stands. The captioner then trains on its frozen features exactly as the book
 * trains on ImageNet features.
 *
 * Only training scenes are used, so the withheld kinds stay unseen: each head learns one attribute,
 * and a withheld kind is a combination of values every head has seen. Unaided, the classifier
 * binds shape to colour and size (it names the shape of a kind it never saw far less often than of
 * one it saw), so the scenes are mirrored and recoloured at random ({@link augmentation}); no
 * augmented view shows a withheld kind either.
 *
 * The weights are saved as torchvision names a ResNet's state dict (`conv1.weight`, ...,
 * `fc.weight`), the format `--pretrained` reads: `torchcap train --pretrained <file>` continues
 * from them as from torchvision's ImageNet file.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tensor, manualSeed } from '../core/tensor';
import { ResNet, type ResNetDepth } from '../nn/resnet';
import { Adam } from '../nn/optim';
import { crossEntropyAsync, backwardAsync } from '../nn/functional';
import { imageBatches, chunks, epochOrder } from '../data';
import { saveTorchFile } from '../serialization';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/images';
import { mulberry32 } from '../util/random';
import { COLORS, PALETTE, POSITIONS, SHAPES, SIZES, isWithheld, sceneSeed, type ColorName, type ObjectKind, type Position, type SceneObject } from './scene-layout';

/** One classification head: its name, how many classes, and each scene's class. */
interface Head {
  name: string;
  /** The attribute it names, and of which place from the left ('place': where a lone object stands). */
  attr: 'size' | 'color' | 'shape' | 'place';
  place?: number;
  classes: number;
  label(objects: readonly SceneObject[]): number;
}

/** The heads for scenes of up to `maxObjects` objects: size, colour and shape at each place (or "none"), and a lone object's place. */
export function sceneHeads(maxObjects: number): Head[] {
  const heads: Head[] = [];
  for (let j = 0; j < maxObjects; j++) {
    for (const [attr, values] of [['size', SIZES], ['color', COLORS], ['shape', SHAPES]] as const) {
      heads.push({
        name: `${attr} ${j + 1}`,
        attr,
        place: j,
        classes: values.length + 1,
        label: (objects) => (j < objects.length ? (values as readonly string[]).indexOf(objects[j][attr]) : values.length),
      });
    }
  }
  heads.push({ name: 'place', attr: 'place', classes: POSITIONS.length, label: (objects) => POSITIONS.indexOf(objects[0].position) });
  return heads;
}

/** A scene as the pretraining reads it: its image and its objects (left to right). */
export interface PretrainScene {
  image: string;
  objects: readonly SceneObject[];
}

export interface PretrainOptions {
  /** The training scenes. */
  scenes: readonly PretrainScene[];
  /** Most objects in a scene. */
  maxObjects: number;
  /** Image side the scenes are decoded at (as the captioner will see them). */
  size: number;
  /** The kinds no training scene shows: no augmented view may show one either. */
  withheld: readonly ObjectKind[];
  /** Mirror and recolour the scenes at random (see {@link augmentation}). Default true. */
  augment?: boolean;
  /** Train under CPU autocast in bfloat16 (where cpuBf16Support() says so); default float32. */
  autocast?: 'bf16';
  backbone?: ResNetDepth;
  epochs: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** Where to save the weights (torchvision's names, as `--pretrained` reads). */
  file: string;
  /** Scenes to classify after training, by group (e.g. seen and unseen held-out scenes): the classifier's accuracy per head. */
  probe?: Record<string, readonly PretrainScene[]>;
  log?: (line: string) => void;
}

export interface PretrainResult {
  file: string;
  /** Per head, the share of the last epoch's training views it named right (views whose label was kept). */
  accuracy: Record<string, number>;
  /** Per probe group and head, the share of its scenes the trained classifier named right. */
  probe: Record<string, Record<string, number>>;
  lastLoss: number;
  seconds: number;
}

/** Colour channel orders: the identity first, then the five other permutations of (R, G, B). */
export const CHANNEL_ORDERS: readonly (readonly number[])[] = [[0, 1, 2], [1, 0, 2], [0, 2, 1], [2, 1, 0], [1, 2, 0], [2, 0, 1]];

function rgb(hex: string): number[] {
  return [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
}

/**
 * What a palette colour looks like with its channels reordered: the palette colour it then comes
 * within 64 levels of in every channel (red becomes green-ish or blue-ish, ...), or null for a
 * colour the palette lacks (yellow reordered to cyan or magenta).
 */
function reorderedColor(color: ColorName, order: readonly number[]): ColorName | null {
  const c = rgb(PALETTE[color]);
  const r = order.map((i) => c[i]);
  return COLORS.find((name) => rgb(PALETTE[name]).every((v, i) => Math.abs(v - r[i]) <= 64)) ?? null;
}

/** The scene mirrored left to right: objects in reverse order, left and right swapped (every shape is drawn mirror-symmetric). */
function mirrored(objects: readonly SceneObject[]): SceneObject[] {
  const swap: Record<Position, Position> = { left: 'right', middle: 'middle', right: 'left' };
  return objects.map((o) => ({ ...o, position: swap[o.position] })).reverse();
}

/** One view of a training scene: mirrored or not, and its channel order (an index into CHANNEL_ORDERS). */
interface View {
  mirror: boolean;
  order: number;
}

/**
 * The pretraining's augmentation: each training scene is mirrored with probability 1/2, and its
 * colour channels reordered with probability 1/2 (one of the five other orders). A reordered view
 * teaches shape, size, count and place in colours the scenes never show together with that shape,
 * which is what keeps the classifier from binding shape to colour; its colour labels are not used
 * (the colours are no longer the palette's). Withheld kinds stay out of training: mirroring keeps
 * every kind, and a reordering under which any object would look like a withheld kind (a large red
 * circle turned blue-ish) is not used for that scene, which is then shown in its own colours.
 */
export function augmentation(objects: readonly SceneObject[], withheld: readonly ObjectKind[], rng: () => number): View {
  const mirror = rng() < 0.5;
  let order = rng() < 0.5 ? 1 + Math.floor(rng() * (CHANNEL_ORDERS.length - 1)) : 0;
  if (order !== 0) {
    const looks = objects.map((o) => ({ ...o, color: reorderedColor(o.color, CHANNEL_ORDERS[order]) }));
    if (looks.some((o) => o.color !== null && isWithheld(o as ObjectKind, withheld))) order = 0;
  }
  return { mirror, order };
}

/** Each head's label of a view ({@link IGNORE} for a colour a reordering changed). */
function viewLabels(heads: readonly Head[], objects: readonly SceneObject[], view: View): number[] {
  const shown = view.mirror ? mirrored(objects) : objects;
  const recoloured = (j: number): boolean => view.order !== 0 && j < shown.length && shown[j].color !== 'white' && shown[j].color !== 'black';
  return heads.map((h) => (h.attr === 'color' && recoloured(h.place!) ? IGNORE : h.label(shown)));
}

/** The label of a head a view does not train. */
const IGNORE = -1;

/** Decodes scenes into one normalized tensor [N, 3, size, size], as the captioner's input. */
async function decodeScenes(scenes: readonly PretrainScene[], size: number): Promise<Tensor> {
  const rows: Tensor[] = [];
  for await (const batch of imageBatches(chunks(scenes.map((s) => ({ source: s.image })), 256), { size })) {
    if (batch.failed.length) throw new Error(`cannot pretrain on ${batch.failed[0].item.source as string}: ${batch.failed[0].reason}`);
    rows.push(batch.images!);
  }
  return Tensor.cat(rows, 0);
}

/**
 * Trains a ResNet (train mode, Adam) to classify the scenes' attributes and saves it (see the
 * module comment). The images are decoded once and kept as one tensor; the views are made from it
 * batch by batch.
 */
export async function pretrainBackbone(opts: PretrainOptions): Promise<PretrainResult> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const batchSize = opts.batchSize ?? 64;
  const seed = opts.seed ?? 0;
  const augment = opts.augment ?? true;
  const heads = sceneHeads(opts.maxObjects);
  manualSeed(seed);
  const net = new ResNet(opts.backbone ?? 18, { numClasses: heads.reduce((n, h) => n + h.classes, 0) });
  const optimizer = new Adam(net.parameters(), { lr: opts.lr ?? 0.001 });

  const images = await decodeScenes(opts.scenes, opts.size);
  const mean = Tensor.from(IMAGENET_MEAN as number[]).view([1, 3, 1, 1]);
  const std = Tensor.from(IMAGENET_STD as number[]).view([1, 3, 1, 1]);
  const reversed = Tensor.from(Array.from({ length: opts.size }, (_, i) => opts.size - 1 - i), { dtype: 'int64' });
  const orders = CHANNEL_ORDERS.map((o) => Tensor.from(o as number[], { dtype: 'int64' }));
  /** The views of scenes `ids` (all with the same view) as one normalized batch. */
  const viewBatch = (ids: number[], view: View): Tensor => {
    let x = images.indexSelect(0, Tensor.from(ids, { dtype: 'int64' }));
    if (view.mirror) x = x.indexSelect(3, reversed);
    if (view.order !== 0) x = x.mul(std).add(mean).indexSelect(1, orders[view.order]).sub(mean).div(std);
    return x;
  };

  let lastLoss = NaN;
  const right = heads.map(() => 0);
  const counted = heads.map(() => 0);
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    const order = epochOrder(opts.scenes.length, epoch, { seed });
    const rng = mulberry32(sceneSeed(seed, epoch));
    let sum = 0;
    let steps = 0;
    right.fill(0);
    counted.fill(0);
    for (let b = 0; b < order.length; b += batchSize) {
      // Group the batch by view, so that each view is made with a few whole-tensor operations.
      const groups = new Map<string, { view: View; ids: number[] }>();
      for (const i of order.slice(b, b + batchSize)) {
        const view = augment ? augmentation(opts.scenes[i].objects, opts.withheld, rng) : { mirror: false, order: 0 };
        const key = `${view.mirror}/${view.order}`;
        if (!groups.has(key)) groups.set(key, { view, ids: [] });
        groups.get(key)!.ids.push(i);
      }
      const parts = [...groups.values()];
      const x = Tensor.cat(parts.map((g) => viewBatch(g.ids, g.view)), 0);
      const perHead = heads.map(() => [] as number[]);
      for (const g of parts) {
        for (const i of g.ids) viewLabels(heads, opts.scenes[i].objects, g.view).forEach((l, k) => perHead[k].push(l));
      }
      const out = await net.forwardAsync(x, { train: true, autocast: opts.autocast });
      const logits = out.dtype === 'float32' ? out : out.to('float32'); // the losses in float32
      let loss: Tensor | null = null;
      let offset = 0;
      for (let k = 0; k < heads.length; k++) {
        const part = logits.narrow(1, offset, heads[k].classes);
        const target = Tensor.from(perHead[k], { dtype: 'int64' });
        offset += heads[k].classes;
        const l = await crossEntropyAsync(part, target, { ignoreIndex: IGNORE });
        loss = loss ? loss.add(l) : l;
        if (epoch === opts.epochs - 1) {
          right[k] += part.detach().argmax(1).eq(target).sum().item();
          counted[k] += perHead[k].filter((v) => v !== IGNORE).length;
        }
      }
      optimizer.zeroGrad();
      await backwardAsync(loss!);
      await optimizer.stepAsync();
      lastLoss = loss!.item();
      sum += lastLoss;
      steps++;
    }
    log(`pretraining the backbone, epoch ${epoch + 1}/${opts.epochs}: mean loss ${(sum / steps).toFixed(4)}`);
  }
  const accuracy = Object.fromEntries(heads.map((h, k) => [h.name, right[k] / Math.max(1, counted[k])]));

  const probe: Record<string, Record<string, number>> = {};
  for (const [name, scenes] of Object.entries(opts.probe ?? {})) {
    if (scenes.length === 0) continue;
    const x = await decodeScenes(scenes, opts.size);
    const logits = await net.forwardAsync(x, { train: false });
    let offset = 0;
    probe[name] = {};
    for (const h of heads) {
      const target = Tensor.from(scenes.map((s) => h.label(s.objects)), { dtype: 'int64' });
      probe[name][h.name] = logits.narrow(1, offset, h.classes).argmax(1).eq(target).sum().item() / scenes.length;
      offset += h.classes;
    }
  }

  await fs.promises.mkdir(path.dirname(opts.file), { recursive: true });
  await saveTorchFile(opts.file, net.stateDict());
  return { file: opts.file, accuracy, probe, lastLoss, seconds: (Date.now() - started) / 1000 };
}
