/** Where a command writes: the process streams by default, a buffer in tests. */
export interface CommandIO {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const processIO: CommandIO = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Reports a command's failure as `torchcap <command>: <message>` on `io.err`; returns the exit status 1. */
export function commandFailed(command: string, io: CommandIO, e: unknown): 1 {
  io.err(`torchcap ${command}: ${e instanceof Error ? e.message : String(e)}\n`);
  return 1;
}

/** An option's command-line name: `batchSize` -> `batch-size`; `renamed` gives flags named otherwise (`{ maxStepsPerEpoch: 'max-steps' }`). */
export function kebabCase(option: string, renamed: Record<string, string> = {}): string {
  return renamed[option] ?? option.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

/** A label for a library's option checks that names the command's flag instead: `batchSize` -> `--batch-size`. */
export function flagLabel(renamed: Record<string, string> = {}): (option: string) => string {
  return (option) => `--${kebabCase(option, renamed)}`;
}
