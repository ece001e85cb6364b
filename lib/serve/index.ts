/**
 * The caption server: captions over HTTP for apps that would rather not embed the model.
 *
 *   const server = await createCaptionServer({ encoder, decoder, vocab, port: 8080 });
 *   // POST /caption  (body: the image, Content-Type image/* or application/octet-stream,
 *   //                 or multipart/form-data with one file field)  -> {"caption": "..."}
 *   //      ?beam=K    this image with beam width K (1: greedy; default the server's `beam`)
 *   // GET  /healthz  -> {"ok": true, "queue": 0, "inFlight": 0, "model": {...}}
 *   // GET  /         a page to pick or drop an image and see its caption (page.ts)
 *   await server.close();   // stops accepting, finishes the requests in flight
 *
 * Built on fastify. What it refuses, and how:
 *  - 400: an empty body, a multipart body that is malformed or holds no file or more than one, a
 *    `beam` that is not an integer from 1 to 20;
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
import { CAPTION_DEFAULTS, Captioner } from '../captioner';
import type { ResNetDepth } from '../nn/resnet';
import type { Autocast } from '../model';
import { checkInt, optionalInt, positiveInt } from '../util/checks';
import { HttpError, readMultipartImage, toHttpError } from './http';
import { CaptionQueue, type CaptionService } from './queue';
import { checkImage, imageProblem } from './image-check';
import { MAX_REQUEST_BEAM, PAGE } from './page';

export { HttpError } from './http';
export { ACCEPTED_FORMATS } from './image-check';
export { MAX_REQUEST_BEAM, PAGE_CSP } from './page';
export type { CaptionService } from './queue';

export const SERVE_DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  maxBodyBytes: 10 * 1024 * 1024,
  maxPixels: 40_000_000,
  requestTimeoutMs: 30_000,
  maxQueue: 64,
  beam: CAPTION_DEFAULTS.beam,
});

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
  autocast?: Autocast;
  /** Convert embedded ICC profiles to sRGB (default false: ignored, as Pillow and the book do). */
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

/** The beam width a request asks for (`?beam=K`, 1 to MAX_REQUEST_BEAM), or the server's; 400 when it is not one. */
function beamOf(query: Record<string, unknown>, fallback: number): number {
  const raw = query.beam;
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : raw;
  try {
    return checkInt(value, 'beam', 1, MAX_REQUEST_BEAM);
  } catch (e) {
    throw new HttpError(400, (e as Error).message);
  }
}

/**
 * The server's settings with their defaults, checked (before any model loads); `label` names an
 * option in the errors (the `serve` command passes its flags' names). The server's own beam width
 * is bounded as a request's is.
 */
export function resolveServeOptions(opts: CaptionServerOptions, label: (option: keyof CaptionServerOptions) => string = (o) => o) {
  optionalInt(opts.batchSize, label('batchSize'), 1);
  optionalInt(opts.imageSize, label('imageSize'), 1);
  optionalInt(opts.maxLen, label('maxLen'), 1);
  return {
    maxBodyBytes: positiveInt(opts.maxBodyBytes, label('maxBodyBytes'), SERVE_DEFAULTS.maxBodyBytes),
    maxPixels: positiveInt(opts.maxPixels, label('maxPixels'), SERVE_DEFAULTS.maxPixels),
    requestTimeoutMs: positiveInt(opts.requestTimeoutMs, label('requestTimeoutMs'), SERVE_DEFAULTS.requestTimeoutMs),
    maxQueue: positiveInt(opts.maxQueue, label('maxQueue'), SERVE_DEFAULTS.maxQueue),
    beam: checkInt(opts.beam ?? SERVE_DEFAULTS.beam, label('beam'), 1, MAX_REQUEST_BEAM),
    host: opts.host ?? SERVE_DEFAULTS.host,
    port: checkInt(opts.port ?? 0, label('port'), 0, 65535),
  };
}

/** Starts the server; resolves once it listens. */
export async function createCaptionServer(opts: CaptionServerOptions): Promise<CaptionServer> {
  const { maxBodyBytes, maxPixels, requestTimeoutMs, maxQueue, beam, host, port } = resolveServeOptions(opts);
  const log = opts.log ?? (() => undefined);

  let owned: Captioner | undefined;
  let captioner: CaptionService;
  if (opts.captioner) {
    captioner = opts.captioner;
  } else {
    if (!opts.encoder || !opts.decoder || !opts.vocab) throw new TypeError('createCaptionServer needs a captioner, or encoder, decoder and vocab files');
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
  const batchSize = positiveInt(opts.batchSize, 'batchSize', captioner.batchSize);
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
    void reply.code(404).send({ error: `no route ${request.method} ${request.url.split('?')[0]}: use POST /caption, GET /healthz, or GET / (a page to caption an image)` });
  });

  // Under overload, refuse before reading the body.
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (request.method === 'POST' && request.url.split('?')[0] === '/caption' && queue.full) {
      const e = queue.queueFull();
      return reply.code(503).headers(e.headers).send({ error: e.message });
    }
    return undefined;
  });

  app.get('/', async (_request, reply) => reply.headers(PAGE.headers).send(PAGE.html));

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
    const requestBeam = beamOf(request.query as Record<string, unknown>, beam);
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
    const { result, cancel } = queue.submit(image, requestTimeoutMs - reply.elapsedTime, requestBeam);
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
