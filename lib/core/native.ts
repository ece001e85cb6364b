/**
 * The loaded native addon. Importing this file loads nothing: the addon (and libtorch) is loaded
 * on the first use of `native`, which also sets up the runtime (thread count, exit hook) once.
 */
import { loadAddon, type AddonInfo } from './addon-loader';
import { installRuntime } from './runtime';
import type { Native } from './binding';

let loaded: { module: Native; info: AddonInfo } | undefined;

function load(): { module: Native; info: AddonInfo } {
  if (!loaded) {
    const { module, info } = loadAddon();
    loaded = { module: module as Native, info };
    installRuntime(loaded.module);
  }
  return loaded;
}

/** The native module, loaded on first use (see binding.ts for what it holds). */
export const native: Native = new Proxy({} as Native, {
  get: (_target, key) => (load().module as unknown as Record<PropertyKey, unknown>)[key],
  has: (_target, key) => key in load().module,
});

/** Where the addon came from and why it was chosen (loads it if it is not loaded yet). */
export function addonInfo(): AddonInfo {
  return load().info;
}
