/**
 * Running the built command line (`node dist/cli.js ...`) as a real child process, so that exit
 * codes, signals and kills are real. `npm test` builds dist/ first (pretest); tests skip, saying
 * so, when it is missing.
 */
import * as fs from 'fs';
import * as path from 'path';
import { spawn, type ChildProcess } from 'child_process';

export const CLI = path.resolve(__dirname, '../../dist/cli.js');
export const cliBuilt = fs.existsSync(CLI);
export const NO_CLI = `${CLI} is not built (npx tsc -p .)`;

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `torchcap ARGS...` to completion. */
export function runCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return finished(startCli(args, opts).child);
}

export interface RunningCli {
  child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Resolves when stdout matches `pattern` (rejects if the process ends first). */
  waitFor(pattern: RegExp): Promise<void>;
  /** The whole result, once the process has ended. */
  result: Promise<CliResult>;
}

export function startCli(args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): RunningCli {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const waiters: { pattern: RegExp; resolve: () => void; reject: (e: Error) => void }[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) {
      if (w.pattern.test(out)) w.resolve();
      else waiters.push(w);
    }
  });
  const result = finished(child, () => out);
  result.then(
    (r) => {
      for (const w of waiters.splice(0)) w.reject(new Error(`the process ended (code ${r.code}, signal ${r.signal}) before ${w.pattern}:\n${r.stdout}\n${r.stderr}`));
    },
    () => undefined,
  );
  return {
    child,
    stdout: () => out,
    waitFor: (pattern) =>
      new Promise<void>((resolve, reject) => {
        if (pattern.test(out)) resolve();
        else waiters.push({ pattern, resolve, reject });
      }),
    result,
  };
}

function finished(child: ChildProcess, stdout?: () => string): Promise<CliResult> {
  let out = '';
  let err = '';
  if (!stdout) child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout: stdout ? stdout() : out, stderr: err }));
  });
}

/** Lines of text that are not empty. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l.trim() !== '');
}
