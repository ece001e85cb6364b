/**
 * torchrun's environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE, LOCAL_RANK) and how local
 * ranks share the cores.
 */
import * as os from 'os';

export interface DistributedEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
}

/** torchrun's variables, or null when WORLD_SIZE is unset or 1. */
export function distributedEnv(env: NodeJS.ProcessEnv = process.env): DistributedEnv | null {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '1') return null;
  const num = (k: string, min: number): number => {
    const v = Number(env[k]);
    if (env[k] === undefined || !Number.isInteger(v) || v < min) throw new RangeError(`${k} must be an integer >= ${min} when WORLD_SIZE is set (got ${JSON.stringify(env[k])})`);
    return v;
  };
  const worldSize = num('WORLD_SIZE', 1);
  const rank = num('RANK', 0);
  if (rank >= worldSize) throw new RangeError(`RANK ${rank} is not below WORLD_SIZE ${worldSize}`);
  if (!env.MASTER_ADDR) throw new RangeError('MASTER_ADDR must name the host of rank 0 when WORLD_SIZE is set');
  return { rank, worldSize, localRank: env.LOCAL_RANK === undefined ? rank : num('LOCAL_RANK', 0), masterAddr: env.MASTER_ADDR, masterPort: num('MASTER_PORT', 1) };
}

/** The intra-op threads each of `nproc` local ranks should use. */
export function threadsPerRank(nproc: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.floor(cores / nproc));
}
