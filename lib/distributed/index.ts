/** Data-parallel training on c10d: the process group, torchrun's environment, local launch. */
export { ProcessGroup, DistributedError, BUCKET_BYTES, distributedBackends } from './process-group';
export type { ProcessGroupOptions } from './process-group';
export { distributedEnv, threadsPerRank } from './env';
export type { DistributedEnv } from './env';
export { launchLocal, freePort, withoutNproc } from './launch';
