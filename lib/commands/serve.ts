/**
 * `torchcap serve`: the caption server (serve/) on the command line.
 *
 *   torchcap serve --port 8080 --encoder encoder-2-3000.ckpt --decoder decoder-2-3000.ckpt \
 *       --vocab vocab.json [--host 127.0.0.1] [--beam 3] [--max-queue 64] [--timeout 30000]
 *
 *   curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' http://127.0.0.1:8080/caption
 *   curl -F image=@photo.jpg http://127.0.0.1:8080/caption
 *   curl --data-binary @photo.jpg -H 'Content-Type: image/jpeg' 'http://127.0.0.1:8080/caption?beam=3'
 *   open http://127.0.0.1:8080/ in a browser: pick or drop an image, see its caption
 *
 * Listens on 127.0.0.1 unless --host says otherwise. SIGTERM or SIGINT stops accepting
 * connections, finishes the requests in flight and exits 0; a second signal exits at once.
 */
import type { Argv, CommandModule } from 'yargs';
import { createCaptionServer, resolveServeOptions, SERVE_DEFAULTS, type CaptionServer, type CaptionServerOptions } from '../serve';
import { MODEL_OPTIONS, parseBackbone } from './caption';
import { CAPTION_DEFAULTS } from '../captioner';
import { commandFailed, flagLabel, processIO, type CommandIO } from './io';

export interface ServeCommandOptions {
  port: number;
  host?: string;
  encoder: string;
  decoder: string;
  vocab: string;
  backbone?: string;
  beam?: number;
  maxLen?: number;
  imageSize?: number;
  batchSize?: number;
  maxBodyBytes?: number;
  maxPixels?: number;
  timeout?: number;
  maxQueue?: number;
  warmUp?: boolean;
  device?: string;
  autocast?: 'bf16' | 'fp16';
  colorManaged?: boolean;
}

/** Loads the model and starts listening; resolves with the server, or null after printing why it could not start. */
/** A server option's flag: `requestTimeoutMs` -> `--timeout`, `maxQueue` -> `--max-queue`. */
const serveFlag = flagLabel({ requestTimeoutMs: 'timeout' });

export async function startServe(opts: ServeCommandOptions, io: CommandIO = processIO): Promise<CaptionServer | null> {
  try {
    const options: CaptionServerOptions = {
      encoder: opts.encoder,
      decoder: opts.decoder,
      vocab: opts.vocab,
      backbone: parseBackbone(opts.backbone),
      beam: opts.beam,
      maxLen: opts.maxLen,
      imageSize: opts.imageSize,
      batchSize: opts.batchSize,
      host: opts.host,
      port: opts.port,
      maxBodyBytes: opts.maxBodyBytes,
      maxPixels: opts.maxPixels,
      requestTimeoutMs: opts.timeout,
      maxQueue: opts.maxQueue,
      warmUp: opts.warmUp,
      device: opts.device,
      autocast: opts.autocast,
      colorManaged: opts.colorManaged,
      log: io.err,
    };
    // The flags are checked (in their own names) before the model loads.
    resolveServeOptions(options, serveFlag);
    const server = await createCaptionServer(options);
    const m = server.captioner;
    io.out(
      `torchcap serve: listening on ${server.url} (resnet${m.encoder.resnet.depth}, ${m.vocab.size} words, ` +
        `${m.imageSize}px images, beam ${opts.beam ?? SERVE_DEFAULTS.beam}); POST /caption, GET /healthz; open ${server.url}/ to caption an image in a browser\n`,
    );
    return server;
  } catch (e) {
    commandFailed('serve', io, e);
    return null;
  }
}

/** Closes the server on SIGTERM/SIGINT (a second signal exits at once); resolves with the exit status once closed. */
export function closeOnSignals(server: CaptionServer, io: CommandIO = processIO, signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) {
        io.err(`torchcap serve: ${signal} again, exiting without waiting\n`);
        process.exit(1);
      }
      stopping = true;
      const s = server.stats();
      io.err(`torchcap serve: ${signal}, finishing ${s.queue + s.inFlight} queued request(s)\n`);
      server.close().then(
        () => {
          for (const sig of signals) process.off(sig, onSignal);
          io.err('torchcap serve: stopped\n');
          resolve(0);
        },
        (e: Error) => {
          io.err(`torchcap serve: closing failed: ${e.message}\n`);
          resolve(1);
        },
      );
    };
    for (const sig of signals) process.on(sig, onSignal);
  });
}

interface ServeArgv {
  port: number;
  host: string;
  encoder: string;
  decoder: string;
  vocab: string;
  backbone?: string;
  beam: number;
  'max-len'?: number;
  'image-size'?: number;
  'batch-size'?: number;
  'max-body-bytes': number;
  'max-pixels': number;
  timeout: number;
  'max-queue': number;
  'warm-up': boolean;
  device: string;
  autocast?: 'bf16' | 'fp16';
  'color-managed': boolean;
}

export const serveCommand: CommandModule<object, ServeArgv> = {
  command: 'serve',
  describe: 'Serve captions over HTTP: POST /caption[?beam=K] (an image as the body or one multipart file) -> {"caption"}, GET /healthz, and GET /, a page to caption an image',
  builder: (y: Argv<object>): Argv<ServeArgv> =>
    (y as Argv<object>)
      .option('port', { type: 'number', default: 8080, describe: 'port to listen on (0: any free port)' })
      .option('host', { type: 'string', default: SERVE_DEFAULTS.host, describe: 'interface to listen on (loopback unless told otherwise)' })
      .options(MODEL_OPTIONS)
      .option('image-size', { type: 'number', describe: `size images are resized to (default ${CAPTION_DEFAULTS.imageSize}, as the book)` })
      .option('batch-size', { type: 'number', describe: `images captioned together at most (default ${CAPTION_DEFAULTS.batchSize})` })
      .option('max-body-bytes', { type: 'number', default: SERVE_DEFAULTS.maxBodyBytes, describe: 'largest request body or uploaded file, bytes (413 beyond)' })
      .option('max-pixels', { type: 'number', default: SERVE_DEFAULTS.maxPixels, describe: 'largest image, width x height from its header (413 beyond)' })
      .option('timeout', { type: 'number', default: SERVE_DEFAULTS.requestTimeoutMs, describe: 'ms from a request\'s arrival to its answer (504 beyond)' })
      .option('max-queue', { type: 'number', default: SERVE_DEFAULTS.maxQueue, describe: 'images waiting or being captioned at most (503 with Retry-After beyond)' })
      .option('warm-up', { type: 'boolean', default: false, describe: 'caption a blank batch of every size before listening, so memory starts at its working level' }) as unknown as Argv<ServeArgv>,
  handler: async (argv) => {
    const server = await startServe({
      port: argv.port,
      host: argv.host,
      encoder: argv.encoder,
      decoder: argv.decoder,
      vocab: argv.vocab,
      backbone: argv.backbone,
      beam: argv.beam,
      maxLen: argv['max-len'],
      imageSize: argv['image-size'],
      batchSize: argv['batch-size'],
      maxBodyBytes: argv['max-body-bytes'],
      maxPixels: argv['max-pixels'],
      timeout: argv.timeout,
      maxQueue: argv['max-queue'],
      warmUp: argv['warm-up'],
      device: argv.device,
      autocast: argv.autocast,
      colorManaged: argv['color-managed'],
    });
    if (!server) {
      process.exitCode = 1;
      return;
    }
    process.exitCode = await closeOnSignals(server);
  },
};
