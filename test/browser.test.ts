/**
 * The page and the report in a real browser: headless Chromium (Debian's `chromium` package;
 * TORCHCAP_CHROMIUM names another binary) driven by playwright-core.
 *
 * - The server's page: pick a held-out scene with the file input, read the greedy and beam captions
 *   the page shows, and compare them with what the API answers for the same file; a file that is
 *   no image shows the server's reason in words; the strict CSP lets the page's own script run and
 *   reports no violation.
 * - The demo's report.html: every image loaded, the metrics and targets tables are there.
 *
 * The model and report come from the demo's output folder (`torchcap-demo/`, as `npm run demo`
 * and .ci/run leave it) when it holds a finished run (summary.json), else from a small demo run
 * made here. Screenshots are saved as torchcap-demo/page.png and torchcap-demo/report.png.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describeIf } from './support/skip';

// The functions given to page.evaluate run in the page; this file is compiled without DOM types.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
declare const document: any;

const CHROMIUM = process.env.TORCHCAP_CHROMIUM ?? '/usr/bin/chromium';
const DEMO_DIR = path.join(__dirname, '..', 'torchcap-demo');
/** Chromium's flags for a run that leaves nothing behind and calls nowhere. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describeIf(fs.existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (install Debian's chromium package, as .ci/run does when root, or set TORCHCAP_CHROMIUM)`, 'in Chromium', () => {
  // Loaded here: the skipped branch needs neither the browser driver nor the addon.
  const { chromium } = require('playwright-core') as typeof import('playwright-core');
  const { runDemo } = require('../lib/demo/run') as typeof import('../lib/demo/run');
  const { readScenesFile } = require('../lib/demo/scenes') as typeof import('../lib/demo/scenes');
  const { createCaptionServer } = require('../lib/serve') as typeof import('../lib/serve');
  type BrowserContext = import('playwright-core').BrowserContext;
  type Summary = import('../lib/demo/run').DemoSummary;

  let tmp: string;
  let demo: string;
  let summary: Summary;
  let profile: string;
  let browser: BrowserContext;
  let server: import('../lib/serve').CaptionServer;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-browser-'));
    demo = DEMO_DIR;
    if (!fs.existsSync(path.join(demo, 'summary.json'))) {
      // eslint-disable-next-line no-console
      console.log(`no finished demo run in ${demo}: running a small one`);
      demo = path.join(tmp, 'demo');
      await runDemo({ out: demo, images: 400, heldOut: 60, unseen: 20, epochs: 2, pretrainEpochs: 1, quiet: true, log: () => undefined });
    }
    summary = JSON.parse(fs.readFileSync(path.join(demo, 'summary.json'), 'utf8')) as Summary;
    const f = summary.files;
    server = await createCaptionServer({ encoder: path.join(demo, f.encoder), decoder: path.join(demo, f.decoder), vocab: path.join(demo, f.vocab), imageSize: f.imageSize, port: 0 });
    profile = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-chromium-'));
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1100, height: 800 } });
    fs.mkdirSync(DEMO_DIR, { recursive: true });
  }, 600_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    for (const dir of [tmp, profile]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A page that records CSP violations and script errors. */
  async function open(url: string) {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    await page.goto(url);
    return { page, problems };
  }

  async function apiCaption(file: string, beam: number): Promise<string> {
    const r = await fetch(`${server.url}/caption?beam=${beam}`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: fs.readFileSync(file) });
    return ((await r.json()) as { caption: string }).caption;
  }

  test('the page captions a chosen scene, greedy and with beam search, as the API does', async () => {
    const scenes = await readScenesFile(path.join(demo, 'data', 'scenes.json'));
    const scene = scenes.scenes.find((s) => s.split === 'test' && s.unseen)!;
    const file = path.join(demo, 'data', 'images', scene.file_name);
    const { page, problems } = await open(`${server.url}/`);
    try {
      await page.waitForFunction(() => /^Model: resnet18 encoder/.test(document.getElementById('model')!.textContent ?? ''));
      await page.check('#beam-on');
      await page.fill('#beam', '3');
      await page.setInputFiles('#file', file);
      await page.waitForFunction(() => /^in \d/.test(document.getElementById('beam-time')!.textContent ?? ''), undefined, { timeout: 60_000 });
      const shown = await page.evaluate(() => ({
        greedy: document.getElementById('greedy')!.textContent,
        greedyTime: document.getElementById('greedy-time')!.textContent,
        beam: document.getElementById('beam-caption')!.textContent,
        how: document.getElementById('beam-how')!.textContent,
        error: document.getElementById('error')!.hidden,
        preview: (document.getElementById('preview') as any).naturalWidth,
      }));
      expect(shown.greedy).toBe(await apiCaption(file, 1));
      expect(shown.beam).toBe(await apiCaption(file, 3));
      expect(shown.greedyTime).toMatch(/^in \d+( ms|\.\d\d s)$/);
      expect(shown.how).toBe('beam search, width 3');
      expect(shown.error).toBe(true);
      expect(shown.preview).toBe(summary.settings.size);
      await page.screenshot({ path: path.join(DEMO_DIR, 'page.png') });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  }, 120_000);

  test('a file that is no image: the page says why in words', async () => {
    const notImage = path.join(tmp, 'notes.txt');
    fs.writeFileSync(notImage, 'this is not a picture');
    const { page, problems } = await open(`${server.url}/`);
    try {
      await page.setInputFiles('#file', notImage);
      await page.waitForSelector('#error:not([hidden])');
      expect(await page.textContent('#error')).toMatch(/^The server could not caption notes\.txt \(HTTP 415\): not an image: the body is in no format the server reads/);
      // The failed request is the only console error (the browser logs the 415 itself).
      expect(problems.filter((p) => !/status of 415/.test(p))).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);

  test("the demo's report: every image loaded, the metrics and targets tables are there", async () => {
    const { page, problems } = await open(`file://${path.join(demo, summary.files.report)}`);
    try {
      const r = await page.evaluate(() => {
        const imgs = [...document.querySelectorAll('figure.item img')] as any[];
        const rows = (t: any) => [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent));
        const tables = [
          ...[...document.querySelectorAll('table.metrics')].map((t) => ({ caption: '', rows: rows(t) })),
          ...[...document.querySelectorAll('section.part')].map((s) => ({ caption: s.querySelector('h2')?.textContent ?? '', rows: rows(s.querySelector('table.data')!) })),
        ];
        return { images: imgs.length, loaded: imgs.filter((i) => i.complete && i.naturalWidth > 0).length, missing: document.querySelectorAll('.missing').length, tables };
      });
      expect(r.images).toBe(summary.settings.heldOut);
      expect(r.loaded).toBe(r.images);
      expect(r.missing).toBe(0);
      const metrics = Object.fromEntries(r.tables[0].rows.map(([k, v]) => [k, Number(v)]));
      expect(metrics.Bleu_4).toBeCloseTo(summary.metrics.Bleu_4, 4);
      expect(Object.keys(metrics)).toEqual(expect.arrayContaining(['Bleu_1', 'Bleu_4', 'ROUGE_L', 'CIDEr']));
      expect(r.tables.map((t) => t.caption)).toEqual(['', expect.stringMatching(/^What a person checks/), 'Targets']);
      expect(r.tables[2].rows.map((row) => row[0])).toEqual(summary.targets.map((t) => t.name));
      await page.screenshot({ path: path.join(DEMO_DIR, 'report.png') });
      expect(problems).toEqual([]);
    } finally {
      await page.close();
    }
  }, 60_000);
});
