/**
 * Data-parallel training on PyTorch's c10d (Gloo on CPU, NCCL for CUDA tensors), joined the way
 * torchrun joins processes: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK and a TCPStore
 * hosted by rank 0.
 *
 * What a training step does with it (lib/train/step.ts): the loss is summed over a rank's target tokens
 * and divided by the all-reduced token count of all ranks, the gradients are all-reduced (summed)
 * in buckets, so N ranks compute what one process would on the union of their batches. Weights
 * start equal: rank 0's are broadcast. `syncBatchNorm` all-reduces BatchNorm statistics as
 * PyTorch's SyncBatchNorm does.
 *
 * Failure: every rank writes a heartbeat to the store; when a collective fails (a peer closed its
 * connection, or nothing came within the timeout), the error names the ranks whose heartbeat
 * stopped.
 */
import { type NativeProcessGroup } from '../core/binding';
import { Tensor, noGrad, h } from '../core/tensor';
import { dispatch } from '../core/executor';
import { native } from '../core/native';

export class DistributedError extends Error {
  constructor(
    message: string,
    readonly lostRanks: number[],
  ) {
    super(message);
    this.name = 'DistributedError';
  }
}

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  host: string;
  port: number;
  /** How long a collective or the rendezvous may wait for the others (ms). */
  timeoutMs?: number;
  backend?: 'gloo' | 'nccl';
  /** Interval of the liveness heartbeat (ms). */
  heartbeatMs?: number;
}

/** Bytes per gradient bucket, as DistributedDataParallel's default. */
export const BUCKET_BYTES = 25 * 1024 * 1024;

export class ProcessGroup {
  readonly rank: number;
  readonly size: number;
  private beats = 0;
  private readonly timer: NodeJS.Timeout;
  private destroyed = false;

  private constructor(
    /** @internal */ readonly native: NativeProcessGroup,
    readonly heartbeatMs: number,
  ) {
    this.rank = native.rank();
    this.size = native.size();
    this.beat();
    this.timer = setInterval(() => this.beat(), heartbeatMs);
    this.timer.unref();
  }

  /** The c10d backend: 'gloo' or 'nccl'. */
  get backend(): string {
    return this.native.backend();
  }

  /** Joins the group (all ranks must call it); resolves when every rank has joined. */
  static async init(opts: ProcessGroupOptions): Promise<ProcessGroup> {
    const g = await dispatch(() =>
      native.createProcessGroup({ host: opts.host, port: opts.port, rank: opts.rank, worldSize: opts.worldSize, timeoutMs: opts.timeoutMs ?? 300_000, backend: opts.backend ?? 'gloo' }),
    );
    return new ProcessGroup(g, opts.heartbeatMs ?? 1000);
  }

  private beat(): void {
    try {
      this.native.storeSet(`heartbeat/${this.rank}`, String(++this.beats));
    } catch {
      // the store (rank 0) is gone: the next collective reports it
    }
  }

  private heartbeats(): (number | null)[] {
    return Array.from({ length: this.size }, (_, r) => {
      try {
        const v = this.native.storeGet(`heartbeat/${r}`, 0);
        return v === null ? null : Number(v);
      } catch {
        return null;
      }
    });
  }

  /** Refuses any use after destroy() (the native group refuses it too). */
  private live(): void {
    if (this.destroyed) throw new Error(`process group destroyed: rank ${this.rank} of ${this.size} cannot be used after destroy()`);
  }

  /** Sets a small shared value in the group's store. */
  setKey(key: string, value: string): void {
    this.live();
    this.native.storeSet(`key/${key}`, value);
  }

  /** Waits (without blocking the event loop) until some rank sets `key`; fails if rank 0 goes away. */
  async waitForKey(key: string, pollMs = 500): Promise<string> {
    for (;;) {
      this.live();
      let v: string | null;
      try {
        v = this.native.storeGet(`key/${key}`, 0);
      } catch (e) {
        throw new DistributedError(`waiting for '${key}' on rank ${this.rank}: the store on rank 0 is gone (${(e as Error).message})`, [0]);
      }
      if (v !== null) return v;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** Ranks whose heartbeat does not advance over three intervals (this rank excluded). */
  async lostRanks(): Promise<number[]> {
    this.live();
    const before = this.heartbeats();
    if (before.every((b) => b === null)) return this.rank === 0 ? [] : [0]; // the store itself is gone
    await new Promise((r) => setTimeout(r, this.heartbeatMs * 3));
    const after = this.heartbeats();
    return after.flatMap((a, r) => (r !== this.rank && (a === null || a === before[r]) ? [r] : []));
  }

  /** Runs a collective; a failure becomes a DistributedError naming the lost ranks. */
  private async collective<T>(what: string, start: () => Promise<T>): Promise<T> {
    this.live();
    try {
      return await dispatch(start);
    } catch (e) {
      if (this.destroyed) throw e; // destroyed while it ran: no heartbeats left to read
      const lost = await this.lostRanks();
      const who = lost.length ? `lost rank${lost.length > 1 ? 's' : ''} ${lost.join(', ')}` : 'no rank stopped its heartbeat';
      throw new DistributedError(`${what} failed on rank ${this.rank} of ${this.size} (${who}): ${(e as Error).message}`, lost);
    }
  }

  /** Sums (or takes the max / min of) each tensor across ranks, in place. */
  allreduce(tensors: Tensor[], op: 'sum' | 'max' | 'min' = 'sum'): Promise<void> {
    return this.collective('allreduce', () => this.native.allreduce(tensors.map((t, i) => h(t, `tensors[${i}]`)), op)).then(() => undefined);
  }

  /** Copies root's tensors to every rank, in place. */
  broadcast(tensors: Tensor[], root = 0): Promise<void> {
    return this.collective('broadcast', () => this.native.broadcast(tensors.map((t, i) => h(t, `tensors[${i}]`)), root)).then(() => undefined);
  }

  barrier(): Promise<void> {
    return this.collective('barrier', () => this.native.barrier()).then(() => undefined);
  }

  /** The sum over ranks, differentiable: the gradient flowing back is summed over ranks too. */
  async allreduceSum(t: Tensor): Promise<Tensor> {
    return new Tensor((await this.collective('allreduce', () => native.allreduceSumDifferentiable(this.native, h(t, 't'))))[0]);
  }

  /**
   * Sums the gradients of `params` across ranks, in buckets of about `bucketBytes` (one flat
   * buffer per bucket, as DistributedDataParallel does). Every parameter must have a gradient.
   */
  async allreduceGradients(params: Tensor[], bucketBytes = BUCKET_BYTES): Promise<void> {
    const buckets: Tensor[][] = [];
    let current: Tensor[] = [];
    let bytes = 0;
    for (const p of params) {
      const size = p.numel * 4;
      if (current.length && bytes + size > bucketBytes) {
        buckets.push(current);
        current = [];
        bytes = 0;
      }
      current.push(p);
      bytes += size;
    }
    if (current.length) buckets.push(current);
    for (const bucket of buckets) {
      const grads = bucket.map((p, i) => {
        const g = p.grad;
        if (!g) throw new DistributedError(`parameter ${params.indexOf(bucket[i])} has no gradient: every trainable parameter must take part in each step`, []);
        return g;
      });
      const flat = noGrad(() => Tensor.cat(grads.map((g) => g.flatten()), 0));
      await this.allreduce([flat]);
      noGrad(() => {
        let offset = 0;
        for (const g of grads) {
          const n = g.numel;
          g.copyFrom(flat.slice(0, offset, offset + n).view(g.shape));
          offset += n;
        }
      });
    }
  }

  /** Copies rank `root`'s values of `tensors` (parameters, buffers) to every rank. */
  async broadcastTensors(tensors: Tensor[], root = 0): Promise<void> {
    await this.broadcast(tensors.map((t) => t.detach()), root);
  }

  /** Leaves the group: its connections and store are dropped; any later use throws. A second call does nothing. */
  destroy(): void {
    clearInterval(this.timer);
    if (this.destroyed) return;
    this.destroyed = true;
    native.destroyProcessGroup(this.native);
  }
}

/** The backends this build supports: 'gloo', and 'nccl' in CUDA builds that have it. */
export function distributedBackends(): readonly string[] {
  return native.distributedBackends;
}
