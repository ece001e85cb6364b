/**
 * Chooses and loads the native addon file. Order:
 *  1. `TORCHCAP_ADDON`: an explicit path;
 *  2. a source build in `build/Release/torchcap.node` (made by `npm install` for this machine);
 *  3. a prebuilt addon in `prebuilds/<platform>-<arch>/` whose libtorch flavour matches the
 *     libtorch found on this machine (`torch-<major>.<minor>-<cpu|cuda>.node`).
 * When nothing matches, the error lists every place it looked and what it found.
 */
import * as fs from 'fs';
import * as path from 'path';

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

export interface LibtorchInfo {
  source: string;
  root: string;
  libDir: string;
  version: string | null;
  versionMajorMinor: string | null;
  cuda: boolean;
  system: boolean;
}

export interface AddonCandidate {
  path: string;
  kind: 'env' | 'source' | 'prebuild';
}

export interface AddonInfo extends AddonCandidate {
  libtorch: LibtorchInfo | null;
}

interface Discovery {
  findLibtorch(opts?: { env?: NodeJS.ProcessEnv; python?: boolean; tried?: string[] }): LibtorchInfo | null;
}

/** scripts/find-libtorch.js: the discovery the install script and binding.gyp use too. */
export function discovery(root = PACKAGE_ROOT): Discovery {
  return require(path.join(root, 'scripts', 'find-libtorch.js')) as Discovery;
}

/** The flavour a prebuilt addon for `lt` is named after: `torch-1.13-cpu`, `torch-2.9-cuda`. */
export function flavourOf(lt: Pick<LibtorchInfo, 'versionMajorMinor' | 'cuda'>): string {
  return `torch-${lt.versionMajorMinor ?? 'unknown'}-${lt.cuda ? 'cuda' : 'cpu'}`;
}

export function prebuildDir(root = PACKAGE_ROOT, platform: string = process.platform, arch: string = process.arch): string {
  return path.join(root, 'prebuilds', `${platform}-${arch}`);
}

/**
 * The addon files to try, best first. `libtorch` is what discovery found (null: none).
 * A CUDA libtorch also accepts the CPU prebuild of the same version as a fallback.
 */
export function addonCandidates(opts: {
  root?: string;
  env?: NodeJS.ProcessEnv;
  platform?: string;
  arch?: string;
  libtorch: LibtorchInfo | null;
}): AddonCandidate[] {
  const root = opts.root ?? PACKAGE_ROOT;
  const env = opts.env ?? process.env;
  if (env.TORCHCAP_ADDON) return [{ path: path.resolve(env.TORCHCAP_ADDON), kind: 'env' }];
  const out: AddonCandidate[] = [];
  const source = path.join(root, 'build', 'Release', 'torchcap.node');
  if (fs.existsSync(source)) out.push({ path: source, kind: 'source' });
  const lt = opts.libtorch;
  if (lt && lt.versionMajorMinor) {
    const dir = prebuildDir(root, opts.platform, opts.arch);
    const names = [flavourOf(lt)];
    if (lt.cuda) names.push(flavourOf({ ...lt, cuda: false }));
    for (const name of names) {
      const file = path.join(dir, `${name}.node`);
      if (fs.existsSync(file)) out.push({ path: file, kind: 'prebuild' });
    }
  }
  return out;
}

/** The error raised when no addon can be loaded: what was looked for, and how to get one. */
export function noAddonMessage(opts: {
  root?: string;
  platform?: string;
  arch?: string;
  libtorch: LibtorchInfo | null;
  tried: string[];
  failures: string[];
}): string {
  const root = opts.root ?? PACKAGE_ROOT;
  const lines = ['torchcap: no native addon could be loaded.'];
  if (opts.libtorch) {
    lines.push(`  libtorch found: ${opts.libtorch.version} (${opts.libtorch.cuda ? 'CUDA' : 'CPU'}) from ${opts.libtorch.source} at ${opts.libtorch.libDir}`);
  } else {
    lines.push(`  libtorch: none found (looked at ${opts.tried.join('; ')})`);
  }
  lines.push(`  looked for: TORCHCAP_ADDON (not set), ${path.join(root, 'build/Release/torchcap.node')}`);
  const dir = prebuildDir(root, opts.platform, opts.arch);
  const have = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
  lines.push(
    `  prebuilt addons in ${dir}: ${have.length ? have.join(', ') : 'none'}` +
      (opts.libtorch ? `; wanted ${flavourOf(opts.libtorch)}.node` : ''),
  );
  for (const f of opts.failures) lines.push(`  failed: ${f}`);
  lines.push(
    '  fix: install libtorch (Debian/Ubuntu: apt-get install libtorch-dev libopenblas0-pthread) or set LIBTORCH,',
    '       then build from source: `npm rebuild torchcap` (or `node scripts/install.js` in the package folder).',
  );
  return lines.join('\n');
}

/**
 * OpenBLAS's idle worker threads spin on sched_yield for about 2^28 cycles before they sleep; on a
 * machine with few cores that spinning takes the cores from the threads doing the work (a decoder
 * step's many small matrix products: 1.05x and 1.16x faster with 4, bench/openblas-idle.js).
 * OpenBLAS reads OPENBLAS_THREAD_TIMEOUT (log2 of the cycles) once, when libtorch loads it, so it
 * is set for the load only, unless the user set it: child processes (a Python the benches compare
 * against, say) get the environment as it was.
 */
export const OPENBLAS_THREAD_TIMEOUT = '4';

export function loadAddon(): { module: unknown; info: AddonInfo } {
  const ours = process.env.OPENBLAS_THREAD_TIMEOUT === undefined;
  if (ours) process.env.OPENBLAS_THREAD_TIMEOUT = OPENBLAS_THREAD_TIMEOUT;
  try {
    return loadFirstAddon();
  } finally {
    if (ours) delete process.env.OPENBLAS_THREAD_TIMEOUT;
  }
}

function loadFirstAddon(): { module: unknown; info: AddonInfo } {
  const d = discovery();
  const tried: string[] = [];
  // The cheap probes first; asking Python costs a second, so only when nothing else is found.
  let libtorch = d.findLibtorch({ python: false, tried });
  if (!libtorch && !process.env.LIBTORCH) libtorch = d.findLibtorch({ python: true, tried: [] });
  const failures: string[] = [];
  for (const c of addonCandidates({ libtorch })) {
    try {
      const module = require(c.path) as unknown;
      return { module, info: { ...c, libtorch } };
    } catch (e) {
      failures.push(`${c.path}: ${(e as Error).message.split('\n')[0]}`);
    }
  }
  throw new Error(noAddonMessage({ libtorch, tried, failures }));
}
