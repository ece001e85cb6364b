/**
 * `npm pack`, then installing the tarball into an empty folder: nothing is compiled (the prebuilt
 * addon for this machine's libtorch is used), versions() works and a caption runs.
 */
import { execFileSync, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { describeIf } from './support/skip';

const root = path.resolve(__dirname, '..');
const registry = spawnSync('npm', ['ping'], { stdio: 'ignore', timeout: 30000 }).status === 0;

describeIf(registry, 'the npm registry cannot be reached (the installed package needs its dependencies)', 'the npm package', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-pack-'));
  let info: { filename: string; size: number; unpackedSize: number; files: { path: string }[] };

  beforeAll(() => {
    const out = execFileSync('npm', ['pack', '--json', '--pack-destination', tmp], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    info = JSON.parse(out)[0];
    console.log(`package ${info.filename}: ${(info.size / 1024).toFixed(0)} KiB packed, ${(info.unpackedSize / 1024).toFixed(0)} KiB unpacked, ${info.files.length} files`);
  }, 300_000);

  test('holds the compiled library, the prebuilt addon, and no tests or fixtures', () => {
    const files = info.files.map((f) => f.path);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/cli.js');
    expect(files.some((f) => /^prebuilds\/linux-x64\/torch-\d+\.\d+-(cpu|cuda)\.node$/.test(f))).toBe(true);
    expect(files).toContain('binding.gyp');
    expect(files.filter((f) => f.startsWith('test/') || f.includes('fixtures'))).toEqual([]);
  });

  test('installs into an empty folder without compiling, loads the prebuild and captions', () => {
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    execFileSync('npm', ['install', path.join(tmp, info.filename), '--no-audit', '--no-fund'], { cwd: app, stdio: 'ignore', timeout: 600_000 });
    const pkg = path.join(app, 'node_modules', 'torchcap');
    expect(fs.existsSync(path.join(pkg, 'build'))).toBe(false); // nothing was compiled
    const script = `
      const t = require('torchcap');
      const { CaptionEncoder, CaptionDecoder } = require('torchcap/dist/model');
      const { Vocabulary } = require('torchcap/dist/vocabulary');
      const sharp = require('sharp');
      (async () => {
        const v = t.versions();
        const vocab = Vocabulary.build(['a red square', 'a blue circle', 'a red circle', 'a blue square'], { threshold: 1 });
        const c = await t.Captioner.load({
          encoder: new CaptionEncoder({ backbone: 18, embedSize: 16 }),
          decoder: new CaptionDecoder({ vocabSize: vocab.size, embedSize: 16, hiddenSize: 16 }),
          vocab, imageSize: 64,
        });
        const png = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#c00' } }).png().toBuffer();
        console.log(JSON.stringify({ addon: v.addon.kind, libtorch: v.libtorch, caption: await c.caption(png) }));
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const out = JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8' }).trim().split('\n').pop()!);
    expect(out.addon).toBe('prebuild');
    expect(out.libtorch).toMatch(/^\d+\.\d+/);
    expect(typeof out.caption).toBe('string');
  }, 600_000);
});
