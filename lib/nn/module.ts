/**
 * Modules: typed wrappers over native libtorch modules (leaves) and TypeScript compositions of
 * them. Parameter and buffer names follow PyTorch exactly (`layer1.0.conv1.weight`,
 * `lstm_layer.weight_ih_l0`), so state dicts saved by Python load by name.
 *
 * The train/eval mode is an explicit argument of every forward, never hidden state.
 */
import type { NativeModule, NativeTensor, ForwardOptions, ModuleKind, ModuleForward } from '../core/binding';
import { Tensor } from '../core/tensor';
import { dispatch } from '../core/executor';

export type Mode = { train: boolean };

export abstract class Module {
  /** Child modules by the attribute name PyTorch uses for them. */
  protected readonly children = new Map<string, Module>();

  protected register<M extends Module>(name: string, child: M): M {
    this.children.set(name, child);
    return child;
  }

  /** This module's own native parameters (leaves only). */
  protected ownParameters(): [string, Tensor][] {
    return [];
  }
  protected ownBuffers(): [string, Tensor][] {
    return [];
  }

  /**
   * The key under which a child's entry appears in this module's state dict. Identity by default;
   * a module whose file format names a child's entries differently overrides it.
   */
  protected childKey(child: string, key: string): string {
    return `${child}.${key}`;
  }

  /** Parameters by full dotted name, in registration order. */
  namedParameters(): Map<string, Tensor> {
    return this.collect((m) => m.ownParameters());
  }

  /** Buffers (BatchNorm running statistics, num_batches_tracked) by full dotted name. */
  namedBuffers(): Map<string, Tensor> {
    return this.collect((m) => m.ownBuffers());
  }

  parameters(): Tensor[] {
    return [...this.namedParameters().values()];
  }

  /** Parameters that will receive gradients. */
  trainableParameters(): Tensor[] {
    return this.parameters().filter((p) => p.requiresGrad);
  }

  /**
   * Parameters and buffers in PyTorch's state_dict() order (each module's own parameters, its own
   * buffers, then its children). The tensors share storage with the module: copying into them
   * changes the module.
   */
  stateDict(): Map<string, Tensor> {
    const out = new Map<string, Tensor>(this.ownState());
    for (const [name, child] of this.children) for (const [k, v] of child.stateDict()) out.set(this.childKey(name, k), v);
    return out;
  }

  /** This module's own entries in state_dict() order (leaves only). */
  protected ownState(): [string, Tensor][] {
    return [...this.ownParameters(), ...this.ownBuffers()];
  }

  /** Moves every parameter and buffer to `device` in place. Inputs are moved to it on every forward. */
  to(device: string): this {
    for (const child of this.children.values()) child.to(device);
    return this;
  }

  /** The device of the module's first parameter (or buffer); 'cpu' for a module with none. */
  get device(): string {
    for (const t of this.stateDict().values()) return t.device;
    return 'cpu';
  }

  /** Turns gradients on or off for all parameters of this module. */
  requiresGrad(on: boolean): this {
    for (const p of this.parameters()) p.requiresGrad = on;
    return this;
  }

  private collect(own: (m: Module) => [string, Tensor][]): Map<string, Tensor> {
    const out = new Map<string, Tensor>(own(this));
    for (const [name, child] of this.children) for (const [k, v] of child.collect(own)) out.set(this.childKey(name, k), v);
    return out;
  }
}

/** A record of native tensors with each one wrapped as a Tensor (null stays null). */
export type Wrapped<R> = { [K in keyof R]: R[K] extends NativeTensor ? Tensor : R[K] extends NativeTensor | null ? Tensor | null : R[K] };
/** A record of Tensors as the native side takes it. */
export type Unwrapped<R> = { [K in keyof R]: R[K] extends NativeTensor ? Tensor : R[K] extends NativeTensor | null | undefined ? Tensor | null | undefined : R[K] };

/** Native handles of a record of tensors (absent entries as null). */
export function toHandles<R extends object>(record: Unwrapped<R>): R {
  const out: Record<string, NativeTensor | null> = {};
  for (const [k, v] of Object.entries(record)) out[k] = v ? (v as Tensor).handle : null;
  return out as R;
}

/** A record of native tensors as Tensors. */
export function wrapRecord<R extends object>(record: R): Wrapped<R> {
  const out: Record<string, Tensor | null> = {};
  for (const [k, v] of Object.entries(record)) out[k] = v ? new Tensor(v as NativeTensor) : null;
  return out as Wrapped<R>;
}

/** A module backed by one native libtorch module of kind K. */
export abstract class NativeLeaf<K extends ModuleKind = ModuleKind> extends Module {
  /** @internal */
  readonly native: NativeModule<K>;

  protected constructor(native: NativeModule<K>) {
    super();
    this.native = native;
  }

  protected override ownParameters(): [string, Tensor][] {
    return this.native.namedParameters().map(([k, t]) => [k, new Tensor(t)]);
  }
  protected override ownBuffers(): [string, Tensor][] {
    return this.native.namedBuffers().map(([k, t]) => [k, new Tensor(t)]);
  }
  protected override ownState(): [string, Tensor][] {
    return this.native.stateDict().map(([k, t]) => [k, new Tensor(t)]);
  }

  override to(device: string): this {
    this.native.to(device, null);
    return super.to(device);
  }

  /** @internal [sync] forward: the kind's input record in, its output record out. */
  protected run(inputs: Unwrapped<ModuleForward[K]['input']>, options: ForwardOptions): Wrapped<ModuleForward[K]['output']> {
    return wrapRecord(this.native.forward(toHandles(inputs), options));
  }

  /** @internal [async] forward on the current executor's thread. */
  protected async runAsync(inputs: Unwrapped<ModuleForward[K]['input']>, options: ForwardOptions): Promise<Wrapped<ModuleForward[K]['output']>> {
    return wrapRecord(await dispatch(() => this.native.forwardAsync(toHandles(inputs), options)));
  }
}

export function checkMode(mode: unknown): Mode {
  if (!mode || typeof (mode as Mode).train !== 'boolean') {
    throw new TypeError('forward needs an explicit mode: { train: true } or { train: false }');
  }
  return mode as Mode;
}
