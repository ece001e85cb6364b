/**
 * What the process needs once the addon is loaded: libtorch's thread count, and an exit hook that
 * lets running native work end before libtorch is torn down. Installed by `native.ts` when it
 * loads the addon, never by importing a file.
 */
import * as os from 'os';
import { isMainThread } from 'worker_threads';

/** The part of the native module the runtime setup uses. */
export interface RuntimeHooks {
  setNumThreads(n: number): void;
  stopExecutors(exitCode?: number): boolean;
}

/** The intra-op thread count to use at load: TORCHCAP_NUM_THREADS, else the core count. */
export function defaultThreads(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.TORCHCAP_NUM_THREADS;
  if (raw !== undefined && raw !== '') {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`TORCHCAP_NUM_THREADS must be a positive integer but is ${JSON.stringify(raw)}`);
    return n;
  }
  return os.availableParallelism();
}

let installed = false;

/** Sets the thread count and installs the exit hook; the first call does it, later calls nothing. */
export function installRuntime(native: RuntimeHooks): void {
  if (installed) return;
  installed = true;
  // process.exit() or an uncaught exception while async work runs: exit would tear libtorch down
  // under the running call (a segfault instead of the exit code). Let the running call end first;
  // one still running after 10 s ends the process at once with its exit code (main thread only: a
  // worker's exit must not end the process). Installed first, so that a refused thread count below
  // leaves it in place.
  process.once('exit', (code) => native.stopExecutors(isMainThread ? code : undefined));
  // libtorch starts with one intra-op thread on some machines: use the cores we have.
  const threads = defaultThreads();
  try {
    native.setNumThreads(threads);
  } catch (e) {
    // the native ceiling (4 per hardware thread): name where the count came from
    const raw = process.env.TORCHCAP_NUM_THREADS;
    if (raw !== undefined && raw !== '') throw new RangeError(`TORCHCAP_NUM_THREADS=${raw} is refused: ${(e as Error).message}`);
    throw e;
  }
}
