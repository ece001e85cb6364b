/**
 * Live comparison with PyTorch: /usr/bin/python3 with Debian's python3-torch links the same
 * libtorch as torchcap. Tests that need it skip, saying so, when it is missing.
 */
import { execFileSync, spawnSync } from 'child_process';

export const PYTHON = process.env.TORCHCAP_PYTHON ?? '/usr/bin/python3';

const cache = new Map<string, boolean>();

/** Whether PYTHON can import every module named. */
export function pythonHas(...modules: string[]): boolean {
  const key = modules.join(',');
  if (!cache.has(key)) {
    const r = spawnSync(PYTHON, ['-c', modules.map((m) => `import ${m}`).join('; ')], { stdio: 'ignore', timeout: 120000 });
    cache.set(key, r.status === 0);
  }
  return cache.get(key)!;
}

/** Runs a Python script (text) with args; returns stdout. Throws with stderr on failure. */
export function runPython(script: string, args: string[] = [], input?: string): string {
  return execFileSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8', input, maxBuffer: 1 << 30, timeout: 600000 });
}
