/**
 * Errors of the serialization layer. Each names the file it concerns; tests compare `name`, since
 * errors may cross JS realms.
 */

/** A weight file that cannot be read or written, or a state dict that does not fit its model. */
export class CheckpointError extends Error {
  /** The file concerned, when there is one. */
  readonly file: string | undefined;

  constructor(message: string, opts: { file?: string; cause?: unknown } = {}) {
    super(opts.file && !message.startsWith(opts.file) ? `${opts.file}: ${message}` : message, opts.cause !== undefined ? { cause: opts.cause } : undefined);
    this.name = 'CheckpointError';
    this.file = opts.file;
  }
}

/** The message of any thrown value (errors of the native addon come from another realm: no instanceof). */
export function messageOf(e: unknown): string {
  if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string') return (e as { message: string }).message;
  return String(e);
}
