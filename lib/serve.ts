/**
 * The caption server: captions over HTTP for apps that would rather not embed the model.
 *
 *   const server = await createCaptionServer({ encoder, decoder, vocab, port: 8080 });
 *   // POST /caption  (body: the image, Content-Type image/* or application/octet-stream,
 *   //                 or multipart/form-data with one file field)  -> {"caption": "..."}
 *   // GET  /healthz  -> {"ok": true, "queue": 0, "inFlight": 0, "model": {...}}
 *   await server.close();   // stops accepting, finishes the requests in flight
 *
 * Built on fastify. What it refuses, and how:
 *  - 400: an empty body, a multipart body that is malformed or holds no file or more than one;
 *  - 413: a body over `maxBodyBytes`, or an image whose header declares more than `maxPixels`
 *    pixels. The pixel count is read from the header (sharp's metadata) before anything is
 *    decoded, so a small file that would decompress to gigabytes (a decompression bomb) costs
 *    nothing. It is 413 (content too large) rather than 422 because the remedy is the same as for
 *    a body that is too large: send a smaller image;
 *  - 415: a Content-Type other than image/*, application/octet-stream or multipart/form-data, or
 *    a body that is no image format the server reads (RFC 9110 allows 415 for a format found by
 *    inspecting the data);
 *  - 422: an image in a known format that cannot be decoded (truncated, corrupt);
 *  - 503 with Retry-After: the caption queue (images waiting plus images being captioned) is full,
 *    or the server is shutting down;
 *  - 504: no caption within `requestTimeoutMs` of the request's arrival.
 * Every error body is `{"error": "..."}` saying what was wrong.
 *
 * Concurrent requests are batched: while the model captions one batch, the images that arrive
 * wait, and the next batch takes up to `batchSize` of them in one `captionEach` call (one encoder
 * pass, one decoder loop). All model work runs on the Captioner's executor thread and sharp's
 * threads; the event loop only parses requests and moves buffers.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import sharp, { type Metadata } from 'sharp';
import { Captioner, type CaptionOutcome } from './captioner';
import type { ResNetDepth } from './nn/resnet';

/** Image formats the server decodes (sharp's raster formats; SVG and PDF are refused). */
export const ACCEPTED_FORMATS: readonly string[] = Object.freeze(['jpeg', 'png', 'webp', 'gif', 'tiff', 'avif', 'heif']);

export const SERVE_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  maxBodyBytes: 10 * 1024 * 1024,
  maxPixels: 40_000_000,
  requestTimeoutMs: 30_000,
  maxQueue: 64,
  beam: 1,
});

/** The part of a Captioner the server uses (a Captioner, or a wrapper around one). */
export type CaptionService = Pick<Captioner, 'captionEach' | 'batchSize' | 'imageSize' | 'encoder' | 'decoder' | 'vocab'>;

export interface CaptionServerOptions {
  /** A loaded captioner; the caller keeps it (close() does not dispose it). */
  captioner?: CaptionService;
  /** Or model files, loaded by the server and disposed on close(). */
  encoder?: string;
  decoder?: string;
  vocab?: string;
  backbone?: ResNetDepth;
  /** Input size images are resized to (224 in the book). */
  imageSize?: number;
  maxLen?: number;
  /** Images per captionEach call at most (the captioner's batch size by default). */
  batchSize?: number;
  /** Where the model computes: 'cpu' (default), 'cuda', 'cuda:N' or 'auto'. */
  device?: string;
  /** On CUDA: the backbone in mixed precision. */
  autocast?: 'bf16' | 'fp16';
  /** Convert embedded ICC profiles to sRGB (default false, as the book). */
  colorManaged?: boolean;
  /** Interface to listen on; 127.0.0.1 unless told otherwise. */
  host?: string;
  /** 0: any free port (read it back from `port`). */
  port?: number;
  /** Largest request body (raw or one multipart file), bytes. */
  maxBodyBytes?: number;
  /** Largest image (width × height, read from its header), pixels. */
  maxPixels?: number;
  /** From a request's arrival to its answer, ms. */
  requestTimeoutMs?: number;
  /** Images waiting or being captioned at most; beyond it requests get 503. */
  maxQueue?: number;
  /** Beam width for every caption (1: greedy). */
  beam?: number;
  /**
   * Before listening, caption a blank batch of every size from 1 to batchSize. The encoder keeps
   * per-shape state (oneDNN's primitive cache), so memory climbs each time a batch of a new size
   * first arrives and is flat once all have been seen; warming up reaches that level at start.
   */
  warmUp?: boolean;
  /** Where to report server errors (500s); silent by default. */
  log?: (line: string) => void;
}

export interface CaptionServerStats {
  /** Images waiting for the model. */
  queue: number;
  /** Images the model is captioning now. */
  inFlight: number;
  maxQueue: number;
  /** Captions answered, and the batches they took. */
  captions: number;
  batches: number;
  closing: boolean;
}

export interface CaptionServer {
  readonly app: FastifyInstance;
  readonly host: string;
  readonly port: number;
  /** `http://host:port` */
  readonly url: string;
  readonly captioner: CaptionService;
  stats(): CaptionServerStats;
  /** Stops accepting connections, finishes the requests in flight, then resolves (idempotent). */
  close(): Promise<void>;
}

/** An answer other than 200, with its JSON error and extra headers. */
export class HttpError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

function positiveInt(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, not ${String(value)}`);
  return v;
}

interface Job {
  image: Buffer;
  settled: boolean;
  timer?: NodeJS.Timeout;
  resolve(outcome: CaptionOutcome): void;
  reject(err: Error): void;
}

/**
 * The bounded queue in front of the model. Images wait in `waiting`; whenever the model is idle
 * the next batch (up to batchSize images) goes to one captionEach call. A request that times out
 * or whose client goes away leaves `waiting` at once; one already in a batch is counted until the
 * batch ends, because the model is still working on it.
 */
class CaptionQueue {
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

  /** Queues one image; the promise settles with its outcome or a 503/504 HttpError. `cancel` drops it if it has not started. */
  submit(image: Buffer, timeoutMs: number): { result: Promise<CaptionOutcome>; cancel(): void } {
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
    const batch = this.waiting.splice(0, this.opts.batchSize);
    this.running = batch;
    const started = performance.now();
    let call: Promise<CaptionOutcome[]>;
    try {
      call = this.captioner.captionEach(
        batch.map((j) => j.image),
        { beam: this.opts.beam },
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

/** Width, height and format from the image header, without decoding the pixels. */
async function checkImage(image: Buffer, maxPixels: number): Promise<void> {
  let meta: Metadata;
  try {
    meta = await sharp(image, { limitInputPixels: false, failOn: 'none' }).metadata();
  } catch (e) {
    const msg = (e as Error).message.split('\n')[0];
    if (/unsupported image format/i.test(msg)) {
      throw new HttpError(415, `not an image: the body is in no format the server reads (${ACCEPTED_FORMATS.join(', ')})`);
    }
    throw new HttpError(422, `cannot read the image header (${msg})`);
  }
  if (!meta.format || !ACCEPTED_FORMATS.includes(meta.format)) {
    throw new HttpError(415, `${String(meta.format).toUpperCase()} images are not accepted; send one of ${ACCEPTED_FORMATS.join(', ')}`);
  }
  const { width, height } = meta;
  if (!width || !height) throw new HttpError(422, `the ${meta.format} header declares no image size`);
  const pixels = width * (meta.pageHeight ?? height);
  if (pixels > maxPixels) {
    throw new HttpError(
      413,
      `the image is ${width}x${meta.pageHeight ?? height} = ${pixels} pixels, more than the ${maxPixels} this server decodes (refused from its header, before decoding); send a smaller image`,
    );
  }
}

/** Error text from captionEach without the `<N-byte buffer>: ` source name. */
function imageProblem(error: string): string {
  return error.replace(/^<[^>]*>: /, '');
}


async function readMultipartImage(request: FastifyRequest, maxBodyBytes: number): Promise<Buffer> {
  let image: Buffer | undefined;
  try {
    const parts = request.parts({ limits: { fileSize: maxBodyBytes, files: 2, fields: 16, fieldSize: 64 * 1024, parts: 32, headerPairs: 64 } });
    for await (const part of parts) {
      if (part.type !== 'file') continue;
      if (image) throw new HttpError(400, 'the multipart body holds more than one file; send one image');
      image = await part.toBuffer();
    }
  } catch (e) {
    if (e instanceof HttpError) throw e;
    const err = e as Error & { code?: string; statusCode?: number };
    if (err.code === 'FST_REQ_FILE_TOO_LARGE') throw new HttpError(413, `the uploaded file is larger than ${maxBodyBytes} bytes`);
    if (err.code === 'FST_FILES_LIMIT') throw new HttpError(400, 'the multipart body holds more than one file; send one image');
    if (err.code === 'FST_PARTS_LIMIT' || err.code === 'FST_FIELDS_LIMIT') throw new HttpError(413, `the multipart body has too many parts (${err.message})`);
    if (err.statusCode && err.statusCode < 500) throw new HttpError(err.statusCode, err.message);
    throw new HttpError(400, `malformed multipart body (${err.message})`);
  }
  if (!image) throw new HttpError(400, 'the multipart body holds no file; send the image as a file field');
  return image;
}

/** fastify's and the multipart plugin's errors, as this server's JSON errors. */
function toHttpError(err: Error & { code?: string; statusCode?: number }, request: FastifyRequest, maxBodyBytes: number): HttpError {
  if (err instanceof HttpError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpError(413, `the body is larger than ${maxBodyBytes} bytes`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
    case 'FST_ERR_CTP_EMPTY_TYPE':
      return new HttpError(
        415,
        `Content-Type ${JSON.stringify(request.headers['content-type'] ?? '')} is not accepted: send the image as the body with Content-Type image/* or application/octet-stream, or as one file in multipart/form-data`,
      );
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpError(400, 'the body does not match its Content-Length');
  }
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
  return new HttpError(status, status === 500 ? 'internal server error' : err.message);
}

/** Starts the server; resolves once it listens. */
export async function createCaptionServer(opts: CaptionServerOptions): Promise<CaptionServer> {
  const maxBodyBytes = positiveInt(opts.maxBodyBytes, SERVE_DEFAULTS.maxBodyBytes, 'maxBodyBytes');
  const maxPixels = positiveInt(opts.maxPixels, SERVE_DEFAULTS.maxPixels, 'maxPixels');
  const requestTimeoutMs = positiveInt(opts.requestTimeoutMs, SERVE_DEFAULTS.requestTimeoutMs, 'requestTimeoutMs');
  const maxQueue = positiveInt(opts.maxQueue, SERVE_DEFAULTS.maxQueue, 'maxQueue');
  const beam = positiveInt(opts.beam, SERVE_DEFAULTS.beam, 'beam');
  const host = opts.host ?? SERVE_DEFAULTS.host;
  const port = opts.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`port must be an integer from 0 to 65535, not ${String(opts.port)}`);
  const log = opts.log ?? (() => undefined);

  let owned: Captioner | undefined;
  let captioner: CaptionService;
  if (opts.captioner) {
    captioner = opts.captioner;
  } else {
    if (!opts.encoder || !opts.decoder || !opts.vocab) throw new TypeError('createCaptionServer needs a captioner, or encoder, decoder and vocab files');
    if (opts.imageSize !== undefined) positiveInt(opts.imageSize, 224, 'imageSize');
    if (opts.maxLen !== undefined) positiveInt(opts.maxLen, 20, 'maxLen');
    owned = await Captioner.load({
      encoder: opts.encoder,
      decoder: opts.decoder,
      vocab: opts.vocab,
      backbone: opts.backbone,
      imageSize: opts.imageSize,
      maxLen: opts.maxLen,
      batchSize: opts.batchSize,
      device: opts.device,
      autocast: opts.autocast,
      colorManaged: opts.colorManaged,
    });
    captioner = owned;
  }
  const batchSize = positiveInt(opts.batchSize, captioner.batchSize, 'batchSize');
  const queue = new CaptionQueue(captioner, { maxQueue, batchSize, beam, requestTimeoutMs, log });
  if (opts.warmUp) {
    const size = captioner.imageSize;
    const blank = { data: new Uint8Array(size * size * 3).fill(128), width: size, height: size };
    for (let n = 1; n <= batchSize; n++) await captioner.captionEach(new Array(n).fill(blank), { beam });
  }
  let closing = false;

  const app = Fastify({
    logger: false,
    // Receiving a request (headers and body) may take no longer than answering it.
    requestTimeout: requestTimeoutMs,
    bodyLimit: maxBodyBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  app.removeAllContentTypeParsers();
  const raw = (_req: unknown, body: string | Buffer, done: (err: Error | null, body?: unknown) => void) => done(null, body);
  app.addContentTypeParser(/^application\/octet-stream\s*(;.*)?$/i, { parseAs: 'buffer', bodyLimit: maxBodyBytes }, raw);
  app.addContentTypeParser(/^image\/[\w.+-]+\s*(;.*)?$/i, { parseAs: 'buffer', bodyLimit: maxBodyBytes }, raw);
  await app.register(multipart, { limits: { fileSize: maxBodyBytes } });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number }, request, reply) => {
    const e = toHttpError(err, request, maxBodyBytes);
    if (e.statusCode === 500 && !(err instanceof HttpError)) log(`torchcap serve: ${request.method} ${request.url}: ${err.stack ?? err.message}\n`);
    if (closing) reply.header('connection', 'close');
    void reply.code(e.statusCode).headers(e.headers).send({ error: e.message });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}: use POST /caption or GET /healthz` });
  });

  // Under overload, refuse before reading the body.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method === 'POST' && request.url.split('?')[0] === '/caption' && queue.full) {
      const e = queue.queueFull();
      return reply.code(503).headers(e.headers).send({ error: e.message });
    }
    return undefined;
  });

  app.get('/healthz', async () => ({
    ok: !closing,
    queue: queue.queued,
    inFlight: queue.inFlight,
    maxQueue,
    model: {
      backbone: `resnet${captioner.encoder.resnet.depth}`,
      embedSize: captioner.encoder.embedSize,
      hiddenSize: captioner.decoder.hiddenSize,
      vocabSize: captioner.vocab.size,
      imageSize: captioner.imageSize,
      batchSize,
      beam,
    },
  }));

  app.post('/caption', async (request, reply) => {
    let image: Buffer;
    if (request.isMultipart()) {
      image = await readMultipartImage(request, maxBodyBytes);
    } else {
      if (request.body === undefined || request.body === null) {
        throw new HttpError(400, 'no body: send the image as the body (Content-Type image/* or application/octet-stream) or as one file in multipart/form-data');
      }
      image = request.body as Buffer;
    }
    if (image.byteLength === 0) throw new HttpError(400, 'the image is empty (0 bytes)');
    await checkImage(image, maxPixels);
    const { result, cancel } = queue.submit(image, requestTimeoutMs - reply.elapsedTime);
    // A client that goes away no longer holds a place in the queue.
    reply.raw.once('close', () => {
      if (!reply.raw.writableFinished) cancel();
    });
    const outcome = await result;
    if (closing) void reply.header('connection', 'close');
    if ('error' in outcome) throw new HttpError(422, `cannot decode the image: ${imageProblem(outcome.error)}`);
    return { caption: outcome.caption };
  });

  await app.listen({ host, port });
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const urlHost = host.includes(':') ? `[${host}]` : host;

  let closed: Promise<void> | undefined;
  return {
    app,
    host,
    port: boundPort,
    url: `http://${urlHost}:${boundPort}`,
    captioner,
    stats: () => ({ queue: queue.queued, inFlight: queue.inFlight, maxQueue, captions: queue.captions, batches: queue.batches, closing }),
    close: () => {
      closed ??= (async () => {
        closing = true;
        await app.close();
        if (owned) await owned.dispose();
      })();
      return closed;
    },
  };
}
