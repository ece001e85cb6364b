/**
 * The caption server's page and per-request beam width: `GET /` is one self-contained document
 * whose Content-Security-Policy allows its own inline style and script and nothing from elsewhere;
 * `POST /caption?beam=K` captions with beam search, refuses widths that are no integer from 1 to
 * 20 in words, and waiting requests are batched by width. (test/browser.test.ts drives the page in
 * Chromium.)
 */
import { createHash } from 'crypto';
import { Captioner, type CaptionOutcome } from '../lib/captioner';
import type { ImageSource } from '../lib/data/images';
import type { SampleOptions } from '../lib/sample';
import { createCaptionServer, MAX_REQUEST_BEAM, type CaptionServer, type CaptionService } from '../lib/serve';
import { writeTinyModels, removeTinyModels, noiseImage, type TinyModels } from './support/tiny-captioner';

let models: TinyModels;
let captioner: Captioner;
let png: Buffer;
const servers: CaptionServer[] = [];

beforeAll(async () => {
  models = await writeTinyModels();
  captioner = await Captioner.load({ encoder: models.encoder, decoder: models.decoder, vocab: models.vocab, imageSize: 48, maxLen: 5 });
  png = await noiseImage(60, 44, 3);
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await captioner?.dispose();
  removeTinyModels(models);
});

async function serve(service: CaptionService = captioner): Promise<CaptionServer> {
  const s = await createCaptionServer({ captioner: service, port: 0 });
  servers.push(s);
  return s;
}

const post = (s: CaptionServer, query = '') =>
  fetch(`${s.url}/caption${query}`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: png }).then(async (r) => ({ status: r.status, json: (await r.json()) as { caption?: string; error?: string } }));

const sha256 = (text: string): string => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

describe('GET /', () => {
  test('is one HTML document, sent with a CSP that allows its own inline style and script and nothing else', async () => {
    const s = await serve();
    const r = await fetch(`${s.url}/`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(r.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await r.text();
    const csp = Object.fromEntries(
      r.headers
        .get('content-security-policy')!
        .split(';')
        .map((d) => d.trim().split(/\s+/))
        .map(([name, ...values]) => [name, values]),
    );
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]);
    const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]);
    expect([scripts.length, styles.length]).toEqual([1, 1]);
    expect(csp).toEqual({
      'default-src': ["'none'"],
      'script-src': [sha256(scripts[0])],
      'style-src': [sha256(styles[0])],
      'img-src': ['blob:'],
      'connect-src': ["'self'"],
      'base-uri': ["'none'"],
      'form-action': ["'none'"],
      'frame-ancestors': ["'none'"],
    });
    // Nothing is loaded from anywhere: no external script, style sheet, image or font, no inline handlers or style attributes.
    expect(html).not.toMatch(/<script[^>]*\ssrc=|<link\b|<img[^>]*\ssrc=|https?:\/\//i);
    expect(styles[0]).not.toMatch(/@import|url\(/i);
    expect(html).not.toMatch(/\son[a-z]+=|\sstyle=/i);
    // The routes it uses, and the controls a user needs.
    expect(scripts[0]).toMatch(/fetch\('healthz'\)/);
    expect(scripts[0]).toMatch(/'caption\?beam=' \+ beam/);
    expect(html).toMatch(/<input type="file" id="file" accept="image\/\*">/);
    expect(html).toMatch(/<input type="number" id="beam" min="1" max="20"/);
    expect(html).toMatch(/role="alert"/);
  });

  test('HEAD / answers the same headers without the page', async () => {
    const s = await serve();
    const r = await fetch(`${s.url}/`, { method: 'HEAD' });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-security-policy')).toMatch(/^default-src 'none'/);
    expect(await r.text()).toBe('');
  });
});

describe('POST /caption?beam=K', () => {
  test('captions with that beam width; 1 is greedy; without it the server uses its own', async () => {
    const s = await serve();
    const greedy = await captioner.caption(png);
    const beam3 = await captioner.caption(png, { beam: 3 });
    expect(await post(s, '?beam=3')).toEqual({ status: 200, json: { caption: beam3 } });
    expect(await post(s, '?beam=1')).toEqual({ status: 200, json: { caption: greedy } });
    expect(await post(s)).toEqual({ status: 200, json: { caption: greedy } });
    expect((await post(s, `?beam=${MAX_REQUEST_BEAM}`)).status).toBe(200);
  });

  test.each([
    ['0', /Expected an integer from 1 to 20 for beam but received 0/],
    ['21', /Expected an integer from 1 to 20 for beam but received 21/],
    ['2.5', /Expected an integer for beam but received the string "2.5"/],
    ['three', /Expected an integer for beam but received the string "three"/],
    ['', /Expected an integer for beam but received the string ""/],
  ])('?beam=%s is refused with 400 and the reason', async (value, message) => {
    const s = await serve();
    const r = await post(s, `?beam=${value}`);
    expect(r.status).toBe(400);
    expect(r.json.error).toMatch(message);
  });

  test('waiting requests are batched by beam width', async () => {
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    const calls: { size: number; beam: number | undefined }[] = [];
    const service = Object.create(captioner) as CaptionService;
    service.captionEach = async (inputs: ImageSource[], o?: SampleOptions): Promise<CaptionOutcome[]> => {
      calls.push({ size: inputs.length, beam: o?.beam });
      await gate;
      return captioner.captionEach(inputs, o);
    };
    const s = await serve(service);
    const first = post(s, '?beam=2');
    while (s.stats().inFlight !== 1) await new Promise((r) => setTimeout(r, 5));
    const rest = ['?beam=1', '?beam=3', '', '?beam=3', '?beam=1'].map((q) => post(s, q));
    while (s.stats().queue !== 5) await new Promise((r) => setTimeout(r, 5));
    open();
    const answers = await Promise.all([first, ...rest]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    // The five waiting requests arrive on their own connections, in some order: whichever width
    // comes first, each width takes one call.
    expect(calls).toHaveLength(3);
    expect(calls[0]).toEqual({ size: 1, beam: 2 });
    expect(calls.slice(1)).toEqual(expect.arrayContaining([{ size: 3, beam: 1 }, { size: 2, beam: 3 }]));
    const beam3 = await captioner.caption(png, { beam: 3 });
    expect(answers[2].json.caption).toBe(beam3);
    expect(answers[4].json.caption).toBe(beam3);
  });
});
