/**
 * The caption server: raw and multipart uploads, every refusal with its status and JSON error,
 * the bounded queue (503 + Retry-After), the per-request timeout (504), batching of concurrent
 * requests, clients that go away, graceful shutdown, and `torchcap serve` end to end. Servers
 * listen on 127.0.0.1, port 0, and are closed after each test.
 */
import * as http from 'http';
import * as path from 'path';
import * as fs from 'fs';
import { spawn } from 'child_process';
import { Captioner, type CaptionOutcome } from '../lib/captioner';
import type { ImageSource } from '../lib/data/images';
import type { SampleOptions } from '../lib/sample';
import { createCaptionServer, type CaptionServer, type CaptionServerOptions, type CaptionService } from '../lib/serve';
import { writeTinyModels, removeTinyModels, noiseImage, solidImage, bombPng, type TinyModels } from './support/tiny-captioner';

const SIZE = 48;
const MAX_LEN = 5;

let models: TinyModels;
let captioner: Captioner;
let png: Buffer;
let jpeg: Buffer;
let bomb: Buffer;
let expected: string;
const servers: CaptionServer[] = [];
const gates: (() => void)[] = [];

beforeAll(async () => {
  models = await writeTinyModels();
  captioner = await Captioner.load({ encoder: models.encoder, decoder: models.decoder, vocab: models.vocab, imageSize: SIZE, maxLen: MAX_LEN });
  png = await noiseImage(60, 44, 3);
  jpeg = await solidImage(50, 30, '#2a6', 'jpeg');
  bomb = bombPng(20000, 20000);
  expected = await captioner.caption(png);
});

afterEach(async () => {
  for (const open of gates.splice(0)) open();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await captioner?.dispose();
  removeTinyModels(models);
});

async function serve(opts: Partial<CaptionServerOptions> = {}): Promise<CaptionServer> {
  const s = await createCaptionServer({ captioner, host: '127.0.0.1', port: 0, ...opts });
  servers.push(s);
  return s;
}

/** A captioner whose calls wait until `open()`; records each call's batch size. */
function gated(): { service: CaptionService; open: () => void; sizes: number[] } {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  gates.push(open);
  const sizes: number[] = [];
  const service = Object.create(captioner) as CaptionService;
  service.captionEach = async (inputs: ImageSource[], o?: SampleOptions): Promise<CaptionOutcome[]> => {
    sizes.push(inputs.length);
    await gate;
    return captioner.captionEach(inputs, o);
  };
  return { service, open, sizes };
}

interface Res {
  status: number;
  headers: http.IncomingHttpHeaders;
  json: { caption?: string; error?: string; [k: string]: unknown };
}

/** One request on its own connection; `body` is written as one piece (or in the given chunks, chunked). */
function request(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; chunks?: Buffer[]; signal?: AbortSignal } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'POST', headers: opts.headers, agent: false, signal: opts.signal }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let json: Res['json'];
        try {
          json = JSON.parse(text);
        } catch {
          json = { error: `(not JSON) ${text}` };
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, json });
      });
    });
    req.on('error', reject);
    if (opts.chunks) {
      for (const c of opts.chunks) req.write(c);
      req.end();
    } else req.end(opts.body);
  });
}

const postImage = (s: CaptionServer, body: Buffer | string, type = 'image/png') => request(`${s.url}/caption`, { headers: { 'content-type': type }, body });

/** multipart/form-data with the given parts. */
function multipart(parts: { name: string; filename?: string; type?: string; data: Buffer | string }[]): { body: Buffer; type: string } {
  const boundary = '----torchcap-test-boundary';
  const chunks: Buffer[] = [];
  for (const p of parts) {
    let head = `--${boundary}\r\nContent-Disposition: form-data; name="${p.name}"`;
    if (p.filename) head += `; filename="${p.filename}"`;
    head += '\r\n';
    if (p.type) head += `Content-Type: ${p.type}\r\n`;
    chunks.push(Buffer.from(head + '\r\n'), Buffer.from(p.data), Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), type: `multipart/form-data; boundary=${boundary}` };
}

async function until(cond: () => boolean, what: string, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('captions', () => {
  test('a raw image body (image/* or application/octet-stream) is answered with its caption', async () => {
    const s = await serve();
    const a = await postImage(s, png);
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toMatch(/^application\/json/);
    expect(a.json).toEqual({ caption: expected });
    const b = await postImage(s, jpeg, 'application/octet-stream');
    expect(b.status).toBe(200);
    expect(b.json.caption).toBe(await captioner.caption(jpeg));
    expect((await postImage(s, png, 'image/png; charset=binary')).json).toEqual({ caption: expected });
  });

  test('a multipart upload with one file field (and other fields) is answered with its caption', async () => {
    const s = await serve();
    const form = multipart([
      { name: 'note', data: 'holiday' },
      { name: 'image', filename: 'photo.png', type: 'image/png', data: png },
    ]);
    const r = await request(`${s.url}/caption`, { headers: { 'content-type': form.type }, body: form.body });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ caption: expected });
  });

  test('GET /healthz reports the queue and the model', async () => {
    const s = await serve({ beam: 2, maxQueue: 9 });
    const r = await request(`${s.url}/healthz`, { method: 'GET' });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({
      ok: true,
      queue: 0,
      inFlight: 0,
      maxQueue: 9,
      model: { backbone: 'resnet18', embedSize: 32, hiddenSize: 64, vocabSize: captioner.vocab.size, imageSize: SIZE, batchSize: 16, beam: 2 },
    });
  });

  test('the server listens on 127.0.0.1 unless told otherwise', async () => {
    const s = await createCaptionServer({ captioner, port: 0 });
    servers.push(s);
    expect(s.host).toBe('127.0.0.1');
    expect((s.app.server.address() as { address: string }).address).toBe('127.0.0.1');
  });

  test('concurrent requests are captioned together in one batch', async () => {
    const g = gated();
    const s = await serve({ captioner: g.service });
    const first = postImage(s, png);
    await until(() => s.stats().inFlight === 1, 'the first request in flight');
    const images = await Promise.all([0, 1, 2, 3, 4].map((k) => noiseImage(40 + k, 40, 20 + k)));
    const rest = images.map((img) => postImage(s, img));
    await until(() => s.stats().queue === 5, 'five requests waiting');
    g.open();
    expect((await first).json).toEqual({ caption: expected });
    const answers = await Promise.all(rest);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.map((r) => r.json.caption)).toEqual(await captioner.caption(images));
    expect(g.sizes).toEqual([1, 5]);
    expect(s.stats()).toMatchObject({ queue: 0, inFlight: 0, captions: 6, batches: 2 });
  });
});

describe('bad input: 4xx with a JSON error naming the problem', () => {
  test.each([
    ['a zero-byte body', { 'content-type': 'image/png' }, Buffer.alloc(0), 400, /the image is empty \(0 bytes\)/],
    ['no body and no Content-Type', {}, undefined, 400, /no body/],
    ['a body that is not an image', { 'content-type': 'image/jpeg' }, Buffer.from('this is not a picture'), 415, /not an image/],
    ['a PNG cut in half', { 'content-type': 'image/png' }, 'truncated-png', 422, /cannot decode the image/],
    ['a JPEG cut in half', { 'content-type': 'image/jpeg' }, 'truncated-jpeg', 422, /cannot (read the image header|decode the image)/],
    ['an image sent as text/plain', { 'content-type': 'text/plain' }, 'png', 415, /Content-Type "text\/plain" is not accepted/],
    ['an image sent as JSON', { 'content-type': 'application/json' }, '{"image": "x"}', 415, /Content-Type "application\/json" is not accepted/],
    ['an image with no Content-Type', {}, 'png', 415, /Content-Type "" is not accepted/],
    ['an SVG image', { 'content-type': 'image/svg+xml' }, '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"/>', 415, /SVG images are not accepted/],
    ['a 20,000x20,000 PNG (decompression bomb)', { 'content-type': 'image/png' }, 'bomb', 413, /20000x20000 = 400000000 pixels, more than the 40000000/],
  ] as [string, Record<string, string>, Buffer | string | undefined, number, RegExp][])('%s', async (_name, headers, body, status, message) => {
    const s = await serve();
    const data = body === 'png' ? png : body === 'bomb' ? bomb : body === 'truncated-png' ? png.subarray(0, png.length >> 1) : body === 'truncated-jpeg' ? jpeg.subarray(0, jpeg.length >> 1) : body;
    const r = await request(`${s.url}/caption`, { headers, body: data });
    expect(r.status).toBe(status);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(r.json)).toEqual(['error']);
    expect(r.json.error).toMatch(message);
    // The server goes on answering good requests.
    expect((await postImage(s, png)).json).toEqual({ caption: expected });
  });

  test('bodies over maxBodyBytes: 413, with or without Content-Length, raw or multipart', async () => {
    const s = await serve({ maxBodyBytes: 4096 });
    const big = Buffer.alloc(5000, 7);
    const withLength = await postImage(s, big);
    expect(withLength.status).toBe(413);
    expect(withLength.json.error).toBe('the body is larger than 4096 bytes');
    const chunked = await request(`${s.url}/caption`, { headers: { 'content-type': 'image/png' }, chunks: [big.subarray(0, 3000), big.subarray(3000)] });
    expect(chunked.status).toBe(413);
    const form = multipart([{ name: 'image', filename: 'big.png', type: 'image/png', data: big }]);
    const m = await request(`${s.url}/caption`, { headers: { 'content-type': form.type }, body: form.body });
    expect(m.status).toBe(413);
    expect(m.json.error).toBe('the uploaded file is larger than 4096 bytes');
    expect((await postImage(s, png)).status).toBe(200);
  });

  test('images over maxPixels are refused from their header, before decoding', async () => {
    const s = await serve({ maxPixels: 50 * 40 });
    const r = await postImage(s, png); // 60x44
    expect(r.status).toBe(413);
    expect(r.json.error).toMatch(/the image is 60x44 = 2640 pixels, more than the 2000 this server decodes/);
    expect((await postImage(s, jpeg, 'image/jpeg')).status).toBe(200); // 50x30
  });

  test.each([
    ['no file', [{ name: 'note', data: 'hello' }], 400, /holds no file/],
    ['two files', [{ name: 'a', filename: 'a.png', data: 'png' }, { name: 'b', filename: 'b.png', data: 'png' }], 400, /more than one file/],
    ['a file that is not an image', [{ name: 'image', filename: 'a.txt', type: 'text/plain', data: 'hello' }], 415, /not an image/],
    ['an empty file', [{ name: 'image', filename: 'a.png', data: '' }], 400, /empty/],
  ] as [string, { name: string; filename?: string; data: Buffer | string }[], number, RegExp][])('multipart with %s', async (_name, parts, status, message) => {
    const s = await serve();
    const form = multipart(parts.map((p) => ({ ...p, data: p.data === 'png' ? png : p.data })));
    const r = await request(`${s.url}/caption`, { headers: { 'content-type': form.type }, body: form.body });
    expect(r.status).toBe(status);
    expect(r.json.error).toMatch(message);
  });

  test('malformed multipart bodies: 400', async () => {
    const s = await serve();
    const cut = await request(`${s.url}/caption`, {
      headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
      body: '--XYZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc',
    });
    expect(cut.status).toBe(400);
    expect(cut.json.error).toMatch(/malformed multipart body/);
    const noBoundary = await request(`${s.url}/caption`, { headers: { 'content-type': 'multipart/form-data' }, body: 'abc' });
    expect(noBoundary.status).toBe(400);
    expect(noBoundary.json.error).toMatch(/malformed multipart body \(.*[Bb]oundary/);
  });

  test('unknown routes and methods: 404 with a JSON error', async () => {
    const s = await serve();
    const r = await request(`${s.url}/captions`, { method: 'GET' });
    expect(r.status).toBe(404);
    expect(r.json.error).toMatch(/no route GET \/captions: use POST \/caption, GET \/healthz, or GET \/ \(a page to caption an image\)/);
    expect((await request(`${s.url}/caption`, { method: 'GET' })).status).toBe(404);
  });
});

describe('load limits', () => {
  test('a full queue answers 503 with Retry-After, before reading the body; the queued requests still succeed', async () => {
    const g = gated();
    const s = await serve({ captioner: g.service, maxQueue: 2 });
    const a = postImage(s, png);
    await until(() => s.stats().inFlight === 1, 'one request in flight');
    const b = postImage(s, png);
    await until(() => s.stats().queue === 1, 'one request waiting');
    for (const body of [png, Buffer.from('even a bad body')]) {
      const full = await postImage(s, body);
      expect(full.status).toBe(503);
      expect(Number(full.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(full.json.error).toMatch(/the caption queue is full \(2 images waiting or being captioned, at most 2\); retry later/);
    }
    const health = await request(`${s.url}/healthz`, { method: 'GET' });
    expect(health.json).toMatchObject({ ok: true, queue: 1, inFlight: 1, maxQueue: 2 });
    g.open();
    expect((await a).json).toEqual({ caption: expected });
    expect((await b).json).toEqual({ caption: expected });
    expect((await postImage(s, png)).status).toBe(200);
  });

  test('a request not answered within requestTimeoutMs gets 504; a waiting one leaves the queue at once', async () => {
    const g = gated();
    const s = await serve({ captioner: g.service, requestTimeoutMs: 400 });
    const t0 = Date.now();
    const running = postImage(s, png);
    await until(() => s.stats().inFlight === 1, 'one request in flight');
    const waiting = postImage(s, png);
    await until(() => s.stats().queue === 1, 'one request waiting');
    const [r1, r2] = await Promise.all([running, waiting]);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(350);
    for (const r of [r1, r2]) {
      expect(r.status).toBe(504);
      expect(r.json.error).toMatch(/no caption within the request timeout of 400 ms/);
    }
    // The model still works on the first one (it counts until done); the second left the queue.
    expect(s.stats()).toMatchObject({ queue: 0, inFlight: 1 });
    g.open();
    await until(() => s.stats().inFlight === 0, 'the batch to finish');
    expect((await postImage(s, png)).json).toEqual({ caption: expected });
  });

  test('a client that disconnects while waiting frees its place in the queue', async () => {
    const g = gated();
    const s = await serve({ captioner: g.service, maxQueue: 2 });
    const running = postImage(s, png);
    await until(() => s.stats().inFlight === 1, 'one request in flight');
    const abort = new AbortController();
    const gone = request(`${s.url}/caption`, { headers: { 'content-type': 'image/png' }, body: png, signal: abort.signal }).catch((e: Error) => e);
    await until(() => s.stats().queue === 1, 'one request waiting');
    abort.abort();
    expect(((await gone) as Error).name).toBe('AbortError');
    await until(() => s.stats().queue === 0, 'the abandoned request to leave the queue');
    g.open();
    expect((await running).status).toBe(200);
    expect(g.sizes).toEqual([1]);
  });
});

describe('graceful shutdown', () => {
  test('close() stops accepting connections, finishes the request in flight, then resolves', async () => {
    const g = gated();
    const s = await createCaptionServer({ captioner: g.service, port: 0 });
    let closedWith: unknown;
    const inFlight = postImage(s, png);
    await until(() => s.stats().inFlight === 1, 'one request in flight');
    const closed = s.close().then(() => (closedWith = s.stats()));
    await until(() => !s.app.server.listening, 'the listener to close');
    const refused = await request(`${s.url}/healthz`, { method: 'GET' }).catch((e: NodeJS.ErrnoException) => e.code);
    expect(refused).toBe('ECONNREFUSED');
    await new Promise((r) => setTimeout(r, 100));
    expect(closedWith).toBeUndefined(); // still waiting for the request
    g.open();
    const r = await inFlight;
    await closed;
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ caption: expected });
    // close() resolved only after the caption was answered.
    expect(closedWith).toMatchObject({ captions: 1, queue: 0, inFlight: 0, closing: true });
    await s.close(); // idempotent
  });

  test('a server that loaded its own model disposes of it on close()', async () => {
    const s = await createCaptionServer({ encoder: models.encoder, decoder: models.decoder, vocab: models.vocab, imageSize: SIZE, maxLen: MAX_LEN, port: 0 });
    expect((await postImage(s, png)).json).toEqual({ caption: expected });
    await s.close();
    const err = await (s.captioner as Captioner).caption(png).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/disposed/);
  });

  test('warmUp captions a blank batch of every size before listening', async () => {
    const sizes: number[] = [];
    const service = Object.create(captioner) as CaptionService;
    service.captionEach = (inputs: ImageSource[], o?: SampleOptions) => {
      sizes.push(inputs.length);
      return captioner.captionEach(inputs, o);
    };
    const s = await serve({ captioner: service, warmUp: true, batchSize: 3 });
    expect(sizes).toEqual([1, 2, 3]);
    expect((await postImage(s, png)).json).toEqual({ caption: expected });
    expect(sizes).toEqual([1, 2, 3, 1]);
  });

  test('options are checked', async () => {
    await expect(createCaptionServer({ captioner, maxQueue: 0 })).rejects.toThrow(/Expected an integer >= 1 for maxQueue but received 0/);
    await expect(createCaptionServer({ captioner, port: 70000 })).rejects.toThrow(/Expected an integer from 0 to 65535 for port but received 70000/);
    await expect(createCaptionServer({})).rejects.toThrow(/needs a captioner, or encoder, decoder and vocab files/);
  });
});

describe('torchcap serve', () => {
  const CLI = path.join(__dirname, '..', 'dist', 'commands', 'serve.js');

  test('serves captions from checkpoint files and exits 0 on SIGTERM after finishing a request in flight', async () => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: build the library first (npx tsc -p .)`);
    const script = `require('yargs')(process.argv.slice(1)).command(require(${JSON.stringify(CLI)}).serveCommand).demandCommand(1).strict().parse()`;
    const args = ['serve', '--port', '0', '--encoder', models.encoder, '--decoder', models.decoder, '--vocab', models.vocab, '--image-size', String(SIZE), '--max-len', String(MAX_LEN)];
    const child = spawn(process.execPath, ['-e', script, '--', ...args], { cwd: path.join(__dirname, '..'), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      await until(() => /listening on/.test(out) || child.exitCode !== null, 'the server to listen', 60000);
      const url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)?.[1];
      expect(url).toBeDefined();
      expect(out).toMatch(/resnet18, \d+ words, 48px images, beam 1/);
      const first = await request(`${url}/caption`, { headers: { 'content-type': 'image/png' }, body: png });
      expect(first.json).toEqual({ caption: expected });
      // A request in flight when SIGTERM arrives is still answered.
      const images = Array.from({ length: 8 }, () => png);
      const pending = images.map((img) => request(`${url}/caption`, { headers: { 'content-type': 'image/png' }, body: img }));
      await new Promise((r) => setTimeout(r, 50));
      child.kill('SIGTERM');
      const answers = await Promise.all(pending.map((p) => p.catch((e: NodeJS.ErrnoException) => ({ status: e.code }))));
      // Requests that reached the server before the signal are answered 200; later ones are refused.
      expect(answers.some((a) => a.status === 200)).toBe(true);
      for (const a of answers) expect([200, 503, 'ECONNREFUSED', 'ECONNRESET']).toContain(a.status);
      expect(await exit).toBe(0);
      expect(err).toMatch(/SIGTERM, finishing \d+ queued request\(s\)/);
      expect(err).toMatch(/stopped/);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
