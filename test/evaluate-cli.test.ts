/** `torchcap evaluate`: the yargs command, its table, its JSON, the per-image file, and its errors. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import yargs from 'yargs';
import { evaluateCommand, runEvaluate } from '../lib/commands/evaluate';
import type { CommandIO } from '../lib/commands/io';

let tmp: string;
let refsFile: string;
let resultsFile: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-evaluate-cli-'));
  refsFile = path.join(tmp, 'refs.json');
  resultsFile = path.join(tmp, 'results.json');
  fs.writeFileSync(refsFile, JSON.stringify({
    type: 'captions',
    images: [{ id: 1 }, { id: 2 }, { id: 3 }],
    annotations: [
      { image_id: 1, id: 1, caption: 'A dog runs on the grass.' },
      { image_id: 1, id: 2, caption: 'A brown dog running in a field.' },
      { image_id: 2, id: 3, caption: 'Two cats sleep on a red sofa.' },
      { image_id: 2, id: 4, caption: 'A pair of cats asleep on a couch.' },
      { image_id: 3, id: 5, caption: 'A man rides a bike down the street.' },
    ],
  }));
  fs.writeFileSync(resultsFile, JSON.stringify([
    { image_id: 2, caption: 'two cats sleeping on a sofa' },
    { image_id: 1, caption: 'a dog running on the grass' },
  ]));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

function capture(): CommandIO & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return { out: (t) => { out += t; }, err: (t) => { err += t; }, stdout: () => out, stderr: () => err };
}

const noJar = () => {
  const saved = process.env.TORCHCAP_METEOR_JAR;
  delete process.env.TORCHCAP_METEOR_JAR;
  return () => {
    if (saved !== undefined) process.env.TORCHCAP_METEOR_JAR = saved;
  };
};

test('prints a table with the toolkit\'s metric names, METEOR and SPICE unavailable with the reason', async () => {
  const restore = noJar();
  try {
    const io = capture();
    expect(await runEvaluate({ references: refsFile, results: resultsFile }, io)).toBe(0);
    const lines = io.stdout().trim().split('\n');
    expect(lines[0]).toMatch(/2 images, 4 reference captions/);
    const names = lines.slice(2, 10).map((l) => l.split(/\s+/)[0]);
    expect(names).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr', 'SPICE']);
    expect(lines[2]).toMatch(/^Bleu_1\s+0\.\d{6}$/);
    expect(lines[6]).toMatch(/^METEOR\s+unavailable: no METEOR 1\.5 jar configured/);
    expect(lines[9]).toMatch(/^SPICE\s+unavailable: SPICE needs/);
    expect(lines[10]).toMatch(/^BLEU statistics: testlen 12, reflen \d+, guess \[12, 10, 8, 6\], correct \[\d+, \d+, \d+, \d+\], ratio /);
    expect(io.stderr()).toBe('');
  } finally {
    restore();
  }
});

test('--json prints one object keyed by metric name; --per-image writes each image\'s scores', async () => {
  const restore = noJar();
  try {
    const io = capture();
    const perImage = path.join(tmp, 'per-image.json');
    expect(await runEvaluate({ references: refsFile, results: resultsFile, json: true, perImage }, io)).toBe(0);
    const obj = JSON.parse(io.stdout());
    expect(Object.keys(obj)).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'METEOR', 'ROUGE_L', 'CIDEr', 'SPICE', 'images', 'bleu', 'unavailable']);
    expect(obj.METEOR).toBeNull();
    expect(obj.SPICE).toBeNull();
    expect(obj.images).toBe(2);
    expect(obj.unavailable.METEOR).toMatch(/no METEOR 1\.5 jar/);
    expect(obj.bleu.guess).toEqual([12, 10, 8, 6]);
    expect(obj.Bleu_1).toBeGreaterThan(0.5);
    const rows = JSON.parse(fs.readFileSync(perImage, 'utf8'));
    expect(rows.map((r: { image_id: number }) => r.image_id)).toEqual([1, 2]);
    expect(rows[0].caption).toBe('a dog running on the grass');
    expect(Object.keys(rows[0]).sort()).toEqual(['Bleu_1', 'Bleu_2', 'Bleu_3', 'Bleu_4', 'CIDEr', 'ROUGE_L', 'caption', 'image_id']);
    expect(io.stderr()).toMatch(/per-image scores written to/);
  } finally {
    restore();
  }
});

test('bad inputs exit 1 with a message naming the problem', async () => {
  const file = (name: string, content: string): string => {
    fs.writeFileSync(path.join(tmp, name), content);
    return path.join(tmp, name);
  };
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ references: path.join(tmp, 'missing.json'), results: resultsFile }, /references file not found/],
    [{ references: refsFile, results: path.join(tmp, 'missing.json') }, /results file not found/],
    [{ references: refsFile, results: file('r1.json', '[{"image_id": 7, "caption": "x"}]') }, /not in the references: 7/],
    [{ references: refsFile, results: file('r2.json', '{') }, /is not valid JSON/],
    [{ references: refsFile, results: file('r3.json', '[{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}]') }, /more than one caption for 1 image: 1/],
  ];
  for (const [args, message] of cases) {
    const io = capture();
    expect(await runEvaluate({ references: args.references, results: args.results }, io)).toBe(1);
    expect(io.stderr()).toMatch(new RegExp(`^torchcap evaluate: .*${message.source}`));
    expect(io.stdout()).toBe('');
  }
  const io = capture();
  expect(await runEvaluate({ references: refsFile, results: resultsFile, perImage: path.join(tmp, 'no-dir', 'x.json') }, io)).toBe(1);
  expect(io.stderr()).toMatch(/cannot write the per-image scores to .*no-dir/);
});

test('the yargs command module parses the flags and requires --references', async () => {
  const restore = noJar();
  const writes: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    writes.push(String(chunk));
    return true;
  });
  try {
    await yargs(['evaluate', '--references', refsFile, '--results', resultsFile, '--json']).command(evaluateCommand).strict().parseAsync();
    expect(JSON.parse(writes.join('')).images).toBe(2);
    expect(process.exitCode ?? 0).toBe(0);
    let failure = '';
    await yargs(['evaluate', '--results', resultsFile]).command(evaluateCommand).exitProcess(false).fail((msg) => {
      failure = msg;
    }).parseAsync();
    expect(failure).toMatch(/Missing required argument: references/);
  } finally {
    spy.mockRestore();
    restore();
    process.exitCode = 0;
  }
});

test('--meteor-jar runs METEOR when Java is there (here a stand-in launcher)', async () => {
  const launcher = path.join(tmp, 'java');
  fs.writeFileSync(launcher, `#!/bin/sh\nexec '${process.execPath}' '${path.join(__dirname, 'fixtures/evaluate/fake-meteor.js')}' "$@"\n`, { mode: 0o755 });
  const jar = path.join(tmp, 'meteor-1.5.jar');
  fs.writeFileSync(jar, 'stand-in');
  const saved = process.env.TORCHCAP_JAVA;
  process.env.TORCHCAP_JAVA = launcher;
  try {
    const io = capture();
    expect(await runEvaluate({ references: refsFile, results: resultsFile, meteorJar: jar, json: true }, io)).toBe(0);
    const obj = JSON.parse(io.stdout());
    // The stand-in scores a candidate as its word count / 100: 6 and 6 words.
    expect(obj.METEOR).toBeCloseTo(0.06, 12);
    expect(obj.unavailable.METEOR).toBeUndefined();
  } finally {
    if (saved === undefined) delete process.env.TORCHCAP_JAVA;
    else process.env.TORCHCAP_JAVA = saved;
  }
});
