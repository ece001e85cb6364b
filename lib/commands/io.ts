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
