/**
 * The bounded queue in front of the model: images wait, and whenever the model is idle the next
 * batch (up to batchSize images asking for the same beam width) goes to one captionEach call (one
 * encoder pass, one decoder loop).
 */
import type { CaptionOutcome } from '../sample';
import type { Captioner } from '../captioner';
import { HttpError } from './http';

/** The part of a Captioner the server uses (a Captioner, or a wrapper around one). */
export type CaptionService = Pick<Captioner, 'captionEach' | 'batchSize' | 'imageSize' | 'encoder' | 'decoder' | 'vocab'>;

interface Job {
  image: Buffer;
  beam: number;
  settled: boolean;
  timer?: NodeJS.Timeout;
  resolve(outcome: CaptionOutcome): void;
  reject(err: Error): void;
}

/**
 * The bounded queue in front of the model. Images wait in `waiting`; whenever the model is idle
 * the next batch (up to batchSize images with the oldest one's beam width) goes to one captionEach
 * call. A request that times out or whose client goes away leaves `waiting` at once; one already in
 * a batch is counted until the batch ends, because the model is still working on it.
 */
export class CaptionQueue {
  private waiting: Job[] = [];
  private running: Job[] = [];
  private batchMs = 0;
  captions = 0;
  batches = 0;

  constructor(
    private readonly captioner: CaptionService,
    private readonly opts: { maxQueue: number; batchSize: number; beam: number; requestTimeoutMs: number; log: (line: string) => void },
  ) {}

  get queued(): number {
    return this.waiting.length;
  }
  get inFlight(): number {
    return this.running.length;
  }
  get full(): boolean {
    return this.waiting.length + this.running.length >= this.opts.maxQueue;
  }

  /** Seconds until the queue has likely drained enough to take a request (at least 1). */
  retryAfter(): number {
    const batchesAhead = Math.ceil((this.waiting.length + this.running.length) / this.opts.batchSize);
    return Math.max(1, Math.ceil((batchesAhead * (this.batchMs || 1000)) / 1000));
  }

  queueFull(): HttpError {
    const n = this.waiting.length + this.running.length;
    return new HttpError(503, `the caption queue is full (${n} images waiting or being captioned, at most ${this.opts.maxQueue}); retry later`, {
      'retry-after': String(this.retryAfter()),
    });
  }

  /**
   * Queues one image, to be captioned with beam width `beam` (the server's by default); the promise
   * settles with its outcome or a 503/504 HttpError. `cancel` drops it if it has not started.
   */
  submit(image: Buffer, timeoutMs: number, beam = this.opts.beam): { result: Promise<CaptionOutcome>; cancel(): void } {
    if (this.full) throw this.queueFull();
    let resolve!: (o: CaptionOutcome) => void;
    let reject!: (e: Error) => void;
    const result = new Promise<CaptionOutcome>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    const settle = (fn: () => void) => {
      if (job.settled) return;
      job.settled = true;
      clearTimeout(job.timer);
      fn();
    };
    const job: Job = {
      image,
      beam,
      settled: false,
      resolve: (o) => settle(() => resolve(o)),
      reject: (e) => settle(() => reject(e)),
    };
    const drop = () => {
      const i = this.waiting.indexOf(job);
      if (i >= 0) this.waiting.splice(i, 1);
    };
    job.timer = setTimeout(() => {
      drop();
      job.reject(new HttpError(504, `no caption within the request timeout of ${this.opts.requestTimeoutMs} ms (the server is busy); retry later`));
    }, Math.max(0, timeoutMs));
    this.waiting.push(job);
    this.pump();
    return {
      result,
      cancel: () => {
        drop();
        job.reject(new HttpError(499, 'the client closed the request'));
      },
    };
  }

  private pump(): void {
    if (this.running.length || !this.waiting.length) return;
    // One call captions with one beam width: the batch is the oldest image and the next ones
    // (in order) that ask for the same width.
    const beam = this.waiting[0].beam;
    const batch: Job[] = [];
    this.waiting = this.waiting.filter((j) => (j.beam === beam && batch.length < this.opts.batchSize ? (batch.push(j), false) : true));
    this.running = batch;
    const started = performance.now();
    let call: Promise<CaptionOutcome[]>;
    try {
      call = this.captioner.captionEach(
        batch.map((j) => j.image),
        { beam },
      );
    } catch (e) {
      call = Promise.reject(e);
    }
    call
      .then(
        (outcomes) => {
          this.captions += batch.length;
          batch.forEach((j, i) => j.resolve(outcomes[i] ?? { error: 'the model returned no caption for this image' }));
        },
        (err: Error) => {
          this.opts.log(`torchcap serve: captioning a batch of ${batch.length} failed: ${err.stack ?? err.message}\n`);
          batch.forEach((j) => j.reject(new HttpError(500, `captioning failed: ${err.message}`)));
        },
      )
      .finally(() => {
        const ms = performance.now() - started;
        this.batchMs = this.batches++ ? 0.8 * this.batchMs + 0.2 * ms : ms;
        this.running = [];
        this.pump();
      });
  }
}

