/** Grad mode and the random seed: per-thread libtorch state that async work inherits when it is dispatched. */
import { AsyncLocalStorage } from 'async_hooks';
import { native } from '../native';
import { checkInt } from '../../util/checks';

/** Sets the random seed of libtorch's generators (and so of randn, dropout, shuffles). */
export function manualSeed(seed: number): void {
  checkInt(seed, 'seed', 0);
  native.manualSeed(seed);
}

/** Runs `fn` with gradient tracking off on this thread (async work started inside inherits it). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.setGradEnabled(false);
  try {
    const r = fn();
    if (r instanceof Promise) {
      r.catch(() => undefined); // refused below: its rejection must not become an unhandled one
      throw new TypeError('noGrad() takes a synchronous function; grad mode is per thread, so pass { grad: false } to async calls instead');
    }
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

const asyncGrad = new AsyncLocalStorage<boolean>();

/**
 * Calls `fn` with grad mode set to `enabled` and restores it before returning. Native async work
 * captures the grad mode when it is dispatched, so `fn` may return a promise of work it started:
 * every native async call `fn` starts, also after its awaits (through AsyncLocalStorage, see
 * dispatch in core/executor.ts), runs with `enabled`.
 * @internal
 */
export function dispatchWithGrad<T>(enabled: boolean, fn: () => T): T {
  const prev = native.setGradEnabled(enabled);
  try {
    return asyncGrad.run(enabled, fn);
  } finally {
    native.setGradEnabled(prev);
  }
}

/** The grad mode of the dispatchWithGrad call whose async chain this is, if any. @internal */
export function asyncGradMode(): boolean | undefined {
  return asyncGrad.getStore();
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}
