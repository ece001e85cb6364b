/** The loader's choice of addon file, and its error when nothing matches. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { addonCandidates, flavourOf, noAddonMessage, type LibtorchInfo } from '../lib/core/addon-loader';

function fakeRoot(files: string[]): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-loader-'));
  for (const f of files) {
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), '');
  }
  return root;
}

const cpu113: LibtorchInfo = { source: 'system', root: '/usr', libDir: '/usr/lib', version: '1.13.0', versionMajorMinor: '1.13', cuda: false, system: true };
const cuda29: LibtorchInfo = { ...cpu113, source: 'python:/usr/bin/python3', version: '2.9.1', versionMajorMinor: '2.9', cuda: true, system: false };

test('flavour names say libtorch version and CPU or CUDA', () => {
  expect(flavourOf(cpu113)).toBe('torch-1.13-cpu');
  expect(flavourOf(cuda29)).toBe('torch-2.9-cuda');
});

test('TORCHCAP_ADDON wins over everything', () => {
  const root = fakeRoot(['build/Release/torchcap.node', 'prebuilds/linux-x64/torch-1.13-cpu.node']);
  const c = addonCandidates({ root, env: { TORCHCAP_ADDON: '/x/y.node' }, platform: 'linux', arch: 'x64', libtorch: cpu113 });
  expect(c).toEqual([{ path: '/x/y.node', kind: 'env' }]);
});

test('a source build comes first, then the matching prebuild', () => {
  const root = fakeRoot(['build/Release/torchcap.node', 'prebuilds/linux-x64/torch-1.13-cpu.node', 'prebuilds/linux-x64/torch-2.9-cuda.node']);
  const c = addonCandidates({ root, env: {}, platform: 'linux', arch: 'x64', libtorch: cpu113 });
  expect(c.map((x) => [x.kind, path.relative(root, x.path)])).toEqual([
    ['source', 'build/Release/torchcap.node'],
    ['prebuild', 'prebuilds/linux-x64/torch-1.13-cpu.node'],
  ]);
});

test('a CUDA libtorch takes the CUDA prebuild, else the CPU one of the same version', () => {
  const both = fakeRoot(['prebuilds/linux-x64/torch-2.9-cuda.node', 'prebuilds/linux-x64/torch-2.9-cpu.node']);
  expect(addonCandidates({ root: both, env: {}, platform: 'linux', arch: 'x64', libtorch: cuda29 }).map((x) => path.basename(x.path))).toEqual([
    'torch-2.9-cuda.node',
    'torch-2.9-cpu.node',
  ]);
  const cpuOnly = fakeRoot(['prebuilds/linux-x64/torch-2.9-cpu.node']);
  expect(addonCandidates({ root: cpuOnly, env: {}, platform: 'linux', arch: 'x64', libtorch: cuda29 }).map((x) => path.basename(x.path))).toEqual([
    'torch-2.9-cpu.node',
  ]);
});

test('no prebuild for another version, platform or architecture', () => {
  const root = fakeRoot(['prebuilds/linux-x64/torch-1.13-cpu.node', 'prebuilds/darwin-arm64/torch-2.9-cpu.node']);
  expect(addonCandidates({ root, env: {}, platform: 'linux', arch: 'x64', libtorch: { ...cpu113, versionMajorMinor: '2.1' } })).toEqual([]);
  expect(addonCandidates({ root, env: {}, platform: 'linux', arch: 'arm64', libtorch: cpu113 })).toEqual([]);
  expect(addonCandidates({ root, env: {}, platform: 'linux', arch: 'x64', libtorch: null })).toEqual([]);
});

test('the error says what libtorch was found, where it looked, what exists and how to fix it', () => {
  const root = fakeRoot(['prebuilds/linux-x64/torch-2.9-cuda.node']);
  const msg = noAddonMessage({ root, platform: 'linux', arch: 'x64', libtorch: cpu113, tried: [], failures: ['/a.node: undefined symbol X'] });
  expect(msg).toMatch(/libtorch found: 1\.13\.0 \(CPU\) from system/);
  expect(msg).toMatch(/build\/Release\/torchcap\.node/);
  expect(msg).toMatch(/prebuilt addons in .*linux-x64: torch-2\.9-cuda\.node; wanted torch-1\.13-cpu\.node/);
  expect(msg).toMatch(/failed: \/a\.node: undefined symbol X/);
  expect(msg).toMatch(/apt-get install libtorch-dev libopenblas0-pthread/);
  const none = noAddonMessage({ root, platform: 'linux', arch: 'x64', libtorch: null, tried: ['LIBTORCH (not set)', 'system install (none)'], failures: [] });
  expect(none).toMatch(/libtorch: none found \(looked at LIBTORCH \(not set\); system install \(none\)\)/);
});

describe('discovery of an unpacked libtorch (LIBTORCH)', () => {
  const { findLibtorch, gypFlags } = require('../scripts/find-libtorch.js') as {
    findLibtorch(opts: { env: NodeJS.ProcessEnv; python: boolean; tried?: string[] }): (LibtorchInfo & { cxx11Abi: number }) | null;
    gypFlags(info: LibtorchInfo, what: string): string;
  };
  const versionLines = (major: number, minor: number, patch: number) =>
    `#pragma once\n#define TORCH_VERSION_MAJOR ${major}\n#define TORCH_VERSION_MINOR ${minor}\n#define TORCH_VERSION_PATCH ${patch}\n`;
  function unpacked(files: Record<string, string>): string {
    const root = fakeRoot(Object.keys(files));
    for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(root, f), text);
    return root;
  }

  test('reads the version where libtorch 1.x and early 2.x define it, and says CPU', () => {
    const root = unpacked({
      'share/cmake/Torch/TorchConfig.cmake': 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=0")\n',
      'include/torch/csrc/api/include/torch/version.h': versionLines(2, 6, 0),
      'lib/libtorch.so': '',
    });
    const info = findLibtorch({ env: { LIBTORCH: root }, python: false });
    expect(info).toMatchObject({ source: 'LIBTORCH', root, libDir: path.join(root, 'lib'), version: '2.6.0', versionMajorMinor: '2.6', cuda: false, cxx11Abi: 0 });
    expect(flavourOf(info!)).toBe('torch-2.6-cpu');
    expect(gypFlags(info!, 'cflags')).toBe('-D_GLIBCXX_USE_CXX11_ABI=0'); // node-gyp builds it as C++17
  });

  test('reads it from torch/headeronly/version.h, which later 2.x releases define it in, and says CUDA', () => {
    const root = unpacked({
      'share/cmake/Torch/TorchConfig.cmake': 'set(TORCH_CXX_FLAGS "-D_GLIBCXX_USE_CXX11_ABI=1")\n',
      'include/torch/csrc/api/include/torch/version.h': '#include <torch/headeronly/version.h>\n',
      'include/torch/headeronly/version.h': versionLines(2, 14, 1),
      'lib/libtorch.so': '',
      'lib/libtorch_cuda.so': '',
    });
    const info = findLibtorch({ env: { LIBTORCH: root }, python: false });
    expect(info).toMatchObject({ version: '2.14.1', versionMajorMinor: '2.14', cuda: true, cxx11Abi: 1 });
    expect(flavourOf(info!)).toBe('torch-2.14-cuda');
    expect(gypFlags(info!, 'cflags')).toBe('-D_GLIBCXX_USE_CXX11_ABI=1 -std=c++20'); // which 2.14's headers require
    expect(gypFlags(info!, 'libs')).toMatch(/-Wl,--no-as-needed -ltorch_cuda -lc10_cuda/);
  });

  test('a LIBTORCH without a CMake config is refused, not passed over', () => {
    const tried: string[] = [];
    expect(findLibtorch({ env: { LIBTORCH: fakeRoot(['lib/libtorch.so']) }, python: false, tried })).toBeNull();
    expect(tried.join('; ')).toMatch(/no share\/cmake\/Torch\/TorchConfig.cmake under it/);
  });
});
