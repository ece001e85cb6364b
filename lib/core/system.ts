/** Runtime facts and settings: versions, threads, live memory, the CPU tensor cache. */
import * as fs from 'fs';
import * as path from 'path';
import type { CpuCacheStats, NativeVersions } from './binding';
import { native, addonInfo } from './native';
import { PACKAGE_ROOT } from './addon-loader';
import { checkInt } from '../util/checks';

export type { CpuCacheStats };

export interface Versions extends NativeVersions {
  torchcap: string;
  node: string;
  addon: { path: string; kind: string };
}

let packageVersion: string | undefined;

export function torchcapVersion(): string {
  packageVersion ??= (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  return packageVersion;
}

/** torchcap, libtorch, BLAS, threads, CUDA and how the addon was built. */
export function versions(): Versions {
  return {
    torchcap: torchcapVersion(),
    node: process.versions.node,
    ...native.versions(),
    addon: { path: addonInfo().path, kind: addonInfo().kind },
  };
}

/** Sets libtorch's intra-op thread count for this process (async work uses it too). */
export function setNumThreads(n: number): void {
  native.setNumThreads(checkInt(n, 'threads', 1));
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

/** Live native tensors and their bytes in this thread's environment. */
export function memory(): { tensors: number; bytes: number } {
  return native.memory();
}

/**
 * The CPU tensor cache (see README, Performance notes): bytes held unused and in use, reuse hits,
 * 2 MiB chunks that blocks under 2 MiB are carved from, and whether its blocks use huge pages and why
 * (off by default on a virtual machine whose balloon reports free memory to its host).
 */
export function cpuCache(): CpuCacheStats {
  return native.cpuCache();
}

/**
 * Frees every cached, unused CPU tensor block. Blocks of 2 MiB and more, and the 2 MiB chunks that
 * smaller ones are carved from, are unmapped: their memory goes back to the system. Blocks under
 * 2 MiB that were not carved (TORCHCAP_HUGE_PAGES=0) go back to malloc.
 */
export function emptyCpuCache(): void {
  native.emptyCpuCache();
}
