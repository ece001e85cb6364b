/**
 * Executors: the native threads async work runs on (see native/executor.h). Each environment has
 * a default one; `executor.run(fn)` makes every async call started inside `fn` (across awaits,
 * through AsyncLocalStorage) go to that executor instead, so that two models can compute at once
 * while the calls of one model stay in order.
 */
import { AsyncLocalStorage } from 'async_hooks';
import { type NativeExecutor } from './binding';
import { native } from './native';
import { asyncGradMode } from './tensor/grad';

const current = new AsyncLocalStorage<Executor>();

export class Executor {
  /** @internal */
  readonly native: NativeExecutor = native.createExecutor();

  /** Runs `fn` with this executor as the target of the async calls it makes. */
  run<T>(fn: () => Promise<T>): Promise<T> {
    return current.run(this, fn);
  }

  /** Calls queued before still finish; later ones are refused. The thread then ends. */
  close(): void {
    this.native.close();
  }

  get pending(): number {
    return this.native.pending();
  }
}

/**
 * Starts a native async call on the executor of the current context (the default one outside any),
 * with the grad mode of the dispatchWithGrad chain it belongs to (the thread's own outside any).
 */
export function dispatch<T>(start: () => Promise<T>): Promise<T> {
  const exec = current.getStore();
  const grad = asyncGradMode();
  if (!exec && grad === undefined) return start();
  if (exec) native.setExecutor(exec.native);
  const prevGrad = grad === undefined ? undefined : native.setGradEnabled(grad);
  try {
    return start();
  } finally {
    if (prevGrad !== undefined) native.setGradEnabled(prevGrad);
    if (exec) native.setExecutor(null);
  }
}
