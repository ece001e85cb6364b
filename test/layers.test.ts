/**
 * The layout of lib/ as layers, checked from the imports of every file (type-only imports count):
 * a file imports only from its own layer or below, only the seam's layers touch the native addon,
 * and no two folders (or top-level files) import each other, directly or round a loop.
 *
 * This table is the one place the layers are written down; the README's map of the source tree
 * shows it.
 */
import * as fs from 'fs';
import * as path from 'path';

/** Folders and top-level files of lib/, by layer, lowest first. */
export const LAYERS: readonly (readonly string[])[] = [
  ['util', 'text'], // pure TypeScript: files, argument checks, progress bars, seeded random, Python's string methods; NLTK's tokenizers
  ['core'], // the native seam: addon loading, the typed binding, tensors, executors, devices, runtime setup
  ['nn', 'serialization', 'distributed'], // modules and optimizers; weight files; process groups
  ['vocabulary', 'data', 'evaluate', 'prepare'], // the book's steps below the model (data never sees the model)
  ['model'], // the encoder, the decoder, their checkpoints
  ['sample'], // greedy, beam search, the captioning loop
  ['train'], // the training loop
  ['captioner', 'serve', 'demo', 'commands', 'cli', 'index'], // the apps and the public API
];

/** Who may import the native binding (core/binding.ts, core/native.ts). */
const NATIVE_IMPORTERS: readonly string[] = ['core/', 'nn/', 'serialization/', 'distributed/', 'data/images.ts', 'data/jpeg.ts'];
const NATIVE_MODULES = ['core/binding.ts', 'core/native.ts'];

const LIB = path.resolve(__dirname, '..', 'lib');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** The lib/ files a file imports (relative specifiers resolved; packages left out). */
export function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const specs = new Set<string>();
  const patterns = [/\b(?:import|export)\s[^'";]*?\bfrom\s+'([^']+)'/g, /\bimport\s+'([^']+)'/g, /\b(?:import|require)\(\s*'([^']+)'\s*\)/g];
  for (const re of patterns) for (const m of text.matchAll(re)) specs.add(m[1]);
  const out: string[] = [];
  for (const spec of specs) {
    if (!spec.startsWith('.')) continue;
    const base = path.resolve(path.dirname(file), spec);
    const target = [`${base}.ts`, path.join(base, 'index.ts')].find((c) => fs.existsSync(c));
    if (!target) throw new Error(`${path.relative(LIB, file)} imports ${spec}, which is no file of lib/`);
    out.push(target);
  }
  return out;
}

/** A file's unit (lib/-relative path): its top folder, or its own name for a top-level file. */
function unitOf(rel: string): string {
  const parts = rel.split('/');
  return parts.length > 1 ? parts[0] : parts[0].replace(/\.ts$/, '');
}

const LAYER_OF = new Map<string, number>(LAYERS.flatMap((units, layer) => units.map((u) => [u, layer] as [string, number])));

type Graph = Map<string, string[]>;

/** Imports of a file from a layer above its own. */
function upwardImports(graph: Graph): string[] {
  const out: string[] = [];
  for (const [file, targets] of graph) {
    const from = LAYER_OF.get(unitOf(file))!;
    for (const t of targets) {
      const to = LAYER_OF.get(unitOf(t))!;
      if (to > from) out.push(`${file} (layer ${from}) imports ${t} (layer ${to})`);
    }
  }
  return out;
}

/** Imports of the native binding by files outside the seam. */
function nativeImports(graph: Graph): string[] {
  const out: string[] = [];
  for (const [file, targets] of graph) {
    if (NATIVE_IMPORTERS.some((p) => file.startsWith(p))) continue;
    for (const t of targets) if (NATIVE_MODULES.includes(t)) out.push(`${file} imports ${t}`);
  }
  return out;
}

/** Loops in the graph of units (folders and top-level files). */
function unitCycles(graph: Graph): string[] {
  const edges = new Map<string, Set<string>>();
  for (const [file, targets] of graph) {
    const a = unitOf(file);
    for (const t of targets) {
      const b = unitOf(t);
      if (a !== b) (edges.get(a) ?? edges.set(a, new Set()).get(a)!).add(b);
    }
  }
  const cycles: string[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (u: string, trail: string[]): void => {
    if (state.get(u) === 'done') return;
    if (state.get(u) === 'open') {
      cycles.push([...trail.slice(trail.indexOf(u)), u].join(' -> '));
      return;
    }
    state.set(u, 'open');
    for (const v of edges.get(u) ?? []) visit(v, [...trail, u]);
    state.set(u, 'done');
  };
  for (const u of edges.keys()) visit(u, []);
  return cycles;
}

const files = sourceFiles(LIB);
const rel = (f: string) => path.relative(LIB, f).split(path.sep).join('/');
const graph: Graph = new Map(files.map((f) => [rel(f), importsOf(f).map(rel)]));

test('every folder and top-level file of lib/ has a layer', () => {
  const units = [...new Set([...graph.keys()].map(unitOf))].sort();
  expect(units.filter((u) => !LAYER_OF.has(u))).toEqual([]);
  expect([...LAYER_OF.keys()].filter((u) => !units.includes(u))).toEqual([]);
});

test('no file imports from a layer above its own (type-only imports count)', () => {
  expect(upwardImports(graph)).toEqual([]);
});

test('only core/, nn/, serialization/, distributed/ and the image decoding import the native binding', () => {
  expect(nativeImports(graph)).toEqual([]);
});

test('outside the seam, nothing reaches through a wrapper to its native object', () => {
  const reaching: string[] = [];
  for (const file of files) {
    if (NATIVE_IMPORTERS.some((p) => rel(file).startsWith(p))) continue;
    fs.readFileSync(file, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/\.native\.\w+\(/.test(line) && !/^\s*(\/\/|\*)/.test(line)) reaching.push(`${rel(file)}:${i + 1}: ${line.trim()}`);
      });
  }
  expect(reaching).toEqual([]);
});

test('no import cycle between folders or top-level files', () => {
  expect(unitCycles(graph)).toEqual([]);
});

test('each check finds the violation it is for', () => {
  expect(upwardImports(new Map([['data/features.ts', ['model/index.ts']]]))).toEqual(['data/features.ts (layer 3) imports model/index.ts (layer 4)']);
  expect(nativeImports(new Map([['model/encoder.ts', ['core/native.ts']], ['nn/layers.ts', ['core/native.ts']]]))).toEqual(['model/encoder.ts imports core/native.ts']);
  expect(unitCycles(new Map([['train/a.ts', ['sample/b.ts']], ['sample/b.ts', ['model/c.ts']], ['model/c.ts', ['train/d.ts']]]))).toEqual(['train -> sample -> model -> train']);
  // type-only imports are read too
  expect(importsOf(path.join(LIB, 'nn', 'sync-batchnorm.ts')).map(rel)).toContain('distributed/process-group.ts');
});

test('no source file of lib/ is longer than about 450 lines (the pickle VM excepted)', () => {
  const long = files
    .filter((f) => rel(f) !== 'serialization/pickle.ts')
    .map((f) => [rel(f), fs.readFileSync(f, 'utf8').split('\n').length] as const)
    .filter(([, n]) => n > 460);
  expect(long).toEqual([]);
});
