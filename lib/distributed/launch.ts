/**
 * `torchcap train --nproc N`: starts N local ranks of the same command with torchrun's environment
 * (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), each with its share of the cores, and
 * waits for them. When one rank fails, the others stop on their own (their next collective fails
 * and names the lost rank); those still running after `graceMs` are killed.
 */
import { spawn, type ChildProcess } from 'child_process';
import * as net from 'net';
import { threadsPerRank } from './env';

export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** `args` without `--nproc N` / `--nproc=N`. */
export function withoutNproc(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--nproc') i++;
    else if (!args[i].startsWith('--nproc=')) out.push(args[i]);
  }
  return out;
}

export async function launchLocal(nproc: number, args: string[], opts: { script?: string; graceMs?: number; log?: (line: string) => void } = {}): Promise<number> {
  const script = opts.script ?? process.argv[1];
  const port = await freePort();
  const log = opts.log ?? ((line: string) => process.stderr.write(line + '\n'));
  log(`torchcap: starting ${nproc} ranks on 127.0.0.1:${port}, ${threadsPerRank(nproc)} threads each`);
  const children: ChildProcess[] = [];
  const exits = Array.from({ length: nproc }, (_, rank) => {
    const child = spawn(process.execPath, [script, ...withoutNproc(args)], {
      stdio: 'inherit',
      env: {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(rank),
        WORLD_SIZE: String(nproc),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        TORCHCAP_NUM_THREADS: String(threadsPerRank(nproc)),
      },
    });
    children.push(child);
    return new Promise<{ rank: number; code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ rank, code, signal })));
  });
  const forward = (sig: NodeJS.Signals) => children.forEach((c) => c.exitCode === null && c.kill(sig));
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  let status = 0;
  let killer: NodeJS.Timeout | undefined;
  await Promise.all(
    exits.map((p) =>
      p.then(({ rank, code, signal }) => {
        if (code === 0) return;
        log(`torchcap: rank ${rank} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}`);
        if (!status) status = code || 1;
        killer ??= setTimeout(() => forward('SIGKILL'), opts.graceMs ?? 60_000);
      }),
    ),
  );
  if (killer) clearTimeout(killer);
  process.removeListener('SIGINT', forward);
  process.removeListener('SIGTERM', forward);
  return status;
}
