import { execFileSync } from 'child_process';
import * as path from 'path';
import * as os from 'os';
import { versions, setNumThreads, getNumThreads } from '../lib';
import { defaultThreads } from '../lib/core/runtime';
import { testIf } from './support/skip';

test('versions() reports torchcap, libtorch, BLAS, threads and CUDA', () => {
  const v = versions();
  expect(v.torchcap).toMatch(/^\d+\.\d+\.\d+/);
  expect(v.libtorch).toMatch(/^\d+\.\d+\.\d+/);
  expect(typeof v.blas).toBe('string');
  expect(v.threads).toBe(os.availableParallelism());
  expect(typeof v.cuda).toBe('boolean');
  expect(v.cudaDevices).toBeGreaterThanOrEqual(0);
  expect(['cmake-js', 'node-gyp']).toContain(v.build.tool);
  expect(v.addon.path).toMatch(/\.node$/);
});

const libtorch = versions().libtorch;
testIf(libtorch.startsWith('1.13'), `libtorch ${libtorch} is not Debian's 1.13: its BLAS is its own business`, 'on a Debian libtorch it runs on OpenBLAS, never the reference BLAS', () => {
  expect(versions().blas).toMatch(/^OpenBLAS/);
});

// Debian's OpenBLAS picks its kernels when it loads (a build for one CPU has no choice to report).
const dynamicOpenblas = libtorch.startsWith('1.13') && versions().blas.startsWith('OpenBLAS') && process.arch === 'x64';
testIf(dynamicOpenblas, `libtorch ${libtorch} with ${versions().blas} on ${process.arch}, not Debian's OpenBLAS on x86-64`, "blasKernels names the kernels OpenBLAS runs, as the environment's OPENBLAS_CORETYPE chose them", () => {
  // Kernels every x86-64 CPU can run, so that forcing them is safe anywhere.
  const root = path.resolve(__dirname, '..');
  const kernels = (coretype: string) =>
    execFileSync(process.execPath, ['-e', "console.log(require('./dist').versions().blasKernels)"], { cwd: root, env: { ...process.env, OPENBLAS_CORETYPE: coretype }, encoding: 'utf8' }).trim();
  expect(kernels('Prescott')).toBe('Prescott');
  expect(kernels('Core2')).toBe('Core2');
  expect(typeof versions().blasKernels).toBe('string');
});

test('setNumThreads overrides the thread count', () => {
  const n = getNumThreads();
  setNumThreads(1);
  expect(getNumThreads()).toBe(1);
  setNumThreads(n);
  expect(getNumThreads()).toBe(n);
});

test('TORCHCAP_NUM_THREADS sets the count at load and bad values are refused', () => {
  const root = path.resolve(__dirname, '..');
  const out = execFileSync(process.execPath, ['-e', "console.log(require('./dist').versions().threads)"], {
    cwd: root,
    env: { ...process.env, TORCHCAP_NUM_THREADS: '1' },
    encoding: 'utf8',
  });
  expect(out.trim()).toBe('1');
  expect(defaultThreads({ TORCHCAP_NUM_THREADS: '3' })).toBe(3);
  expect(defaultThreads({})).toBe(os.availableParallelism());
  expect(() => defaultThreads({ TORCHCAP_NUM_THREADS: 'many' })).toThrow(/positive integer/);
});

test('requiring torchcap loads nothing native, nor sharp or the progress bar; the first use loads the addon and sets the threads', () => {
  const root = path.resolve(__dirname, '..');
  const script = [
    "const loaded = () => Object.keys(require.cache).some((k) => k.endsWith('torchcap.node'));",
    "const packages = () => [...new Set(Object.keys(require.cache).map((k) => k.match(/node_modules.(sharp|cli-progress)./)?.[1]).filter(Boolean))];",
    "const t = require('./dist');",
    'const before = loaded();',
    'const packagesBefore = packages();',
    't.Tensor.from([1, 2]);',
    'console.log(JSON.stringify({ before, packagesBefore, after: loaded(), threads: t.getNumThreads() }));',
  ].join('\n');
  const out = execFileSync(process.execPath, ['-e', script], { cwd: root, env: { ...process.env, TORCHCAP_NUM_THREADS: '1' }, encoding: 'utf8' });
  expect(JSON.parse(out)).toEqual({ before: false, packagesBefore: [], after: true, threads: 1 });
});
