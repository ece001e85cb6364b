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
 * and a withheld kind is a combination of values every head has seen.
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
import { COLORS, POSITIONS, SHAPES, SIZES, type SceneObject } from './scene-layout';

/** One classification head: its name, how many classes, and each scene's class. */
interface Head {
  name: string;
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
        classes: values.length + 1,
        label: (objects) => (j < objects.length ? (values as readonly string[]).indexOf(objects[j][attr]) : values.length),
      });
    }
  }
  heads.push({ name: 'place', classes: POSITIONS.length, label: (objects) => POSITIONS.indexOf(objects[0].position) });
  return heads;
}

export interface PretrainOptions {
  /** The training scenes: image path and objects (left to right). */
  scenes: readonly { image: string; objects: readonly SceneObject[] }[];
  /** Most objects in a scene. */
  maxObjects: number;
  /** Image side the scenes are decoded at (as the captioner will see them). */
  size: number;
  backbone?: ResNetDepth;
  epochs: number;
  batchSize?: number;
  lr?: number;
  seed?: number;
  /** Where to save the weights (torchvision's names, as `--pretrained` reads). */
  file: string;
  log?: (line: string) => void;
}

export interface PretrainResult {
  file: string;
  /** Per head, the share of the last epoch's training scenes it named right. */
  accuracy: Record<string, number>;
  lastLoss: number;
  seconds: number;
}

/**
 * Trains a ResNet (train mode, Adam) to classify the scenes' attributes and saves it (see the
 * module comment). The images are decoded once and kept as one tensor.
 */
export async function pretrainBackbone(opts: PretrainOptions): Promise<PretrainResult> {
  const started = Date.now();
  const log = opts.log ?? (() => undefined);
  const batchSize = opts.batchSize ?? 64;
  const seed = opts.seed ?? 0;
  const heads = sceneHeads(opts.maxObjects);
  manualSeed(seed);
  const net = new ResNet(opts.backbone ?? 18, { numClasses: heads.reduce((n, h) => n + h.classes, 0) });
  const optimizer = new Adam(net.parameters(), { lr: opts.lr ?? 0.001 });

  // Decode every scene once: [N, 3, size, size], normalized as the captioner's input.
  const rows: Tensor[] = [];
  for await (const batch of imageBatches(chunks(opts.scenes.map((s) => ({ source: s.image })), 256), { size: opts.size })) {
    if (batch.failed.length) throw new Error(`cannot pretrain on ${batch.failed[0].item.source as string}: ${batch.failed[0].reason}`);
    rows.push(batch.images!);
  }
  const images = Tensor.cat(rows, 0);
  const labels = heads.map((h) => Tensor.from(opts.scenes.map((s) => h.label(s.objects)), { dtype: 'int64' }));

  let lastLoss = NaN;
  const right = heads.map(() => 0);
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    const order = epochOrder(opts.scenes.length, epoch, { seed });
    let sum = 0;
    let steps = 0;
    right.fill(0);
    for (let b = 0; b < order.length; b += batchSize) {
      const index = Tensor.from(order.slice(b, b + batchSize), { dtype: 'int64' });
      const logits = await net.forwardAsync(images.indexSelect(0, index), { train: true });
      let loss: Tensor | null = null;
      let offset = 0;
      for (let k = 0; k < heads.length; k++) {
        const part = logits.narrow(1, offset, heads[k].classes);
        const target = labels[k].indexSelect(0, index);
        offset += heads[k].classes;
        const l = await crossEntropyAsync(part, target);
        loss = loss ? loss.add(l) : l;
        if (epoch === opts.epochs - 1) right[k] += part.detach().argmax(1).eq(target).sum().item();
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
  const accuracy = Object.fromEntries(heads.map((h, k) => [h.name, right[k] / opts.scenes.length]));
  await fs.promises.mkdir(path.dirname(opts.file), { recursive: true });
  await saveTorchFile(opts.file, net.stateDict());
  return { file: opts.file, accuracy, lastLoss, seconds: (Date.now() - started) / 1000 };
}
