import { native } from './native';
/** Devices: 'cpu', 'cuda', 'cuda:N', or 'auto' (the first CUDA device when there is one). */

export type DeviceOption = 'auto' | 'cpu' | 'cuda' | `cuda:${number}`;

/** The concrete device for an option; errors say why CUDA cannot be used. */
export function resolveDevice(device: string = 'cpu'): string {
  if (device === 'cpu') return 'cpu';
  const v = native.versions();
  if (device === 'auto') return v.cuda ? 'cuda:0' : 'cpu';
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new TypeError(`device must be 'auto', 'cpu', 'cuda' or 'cuda:N', not ${JSON.stringify(device)}`);
  if (!v.cudaBuild) throw new RangeError(`device ${device}: this torchcap is built against a CPU-only libtorch (${v.libtorch}); build it against a CUDA libtorch (set LIBTORCH) to use a GPU`);
  if (!v.cuda) throw new RangeError(`device ${device}: libtorch sees no CUDA device (check the driver and CUDA_VISIBLE_DEVICES)`);
  const index = m[1] === undefined ? 0 : Number(m[1]);
  if (index >= v.cudaDevices) throw new RangeError(`device ${device}: only ${v.cudaDevices} CUDA device${v.cudaDevices === 1 ? '' : 's'} (cuda:0..cuda:${v.cudaDevices - 1})`);
  return `cuda:${index}`;
}
