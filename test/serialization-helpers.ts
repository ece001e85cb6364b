/**
 * Helpers of the serialization tests (not a test file).
 */
import { OrderedDict, PyGlobal, PyPersistent, PyReduce, pickle, pyTuple } from '../lib/serialization';

/**
 * A legacy file made by hand: storage views (view_metadata, written by PyTorch before 1.0) and a
 * big-endian machine's data, which current PyTorch never writes.
 */
export function handMadeLegacy(littleEndian: boolean): Buffer {
  const rebuild = new PyGlobal('torch._utils', '_rebuild_tensor_v2');
  const hooks = new PyReduce(new PyGlobal('collections', 'OrderedDict'), []);
  const storage = (view: unknown): PyPersistent => new PyPersistent(pyTuple('storage', new PyGlobal('torch', 'FloatStorage'), 'root', 'cpu', 6, view));
  const main = new OrderedDict<string, unknown>([
    ['whole', new PyReduce(rebuild, [storage(null), 0, pyTuple(2, 3), pyTuple(3, 1), false, hooks])],
    // elements [2, 5) of the root storage, and of those, elements 1 and 2
    ['view', new PyReduce(rebuild, [storage(pyTuple('view1', 2, 3)), 1, pyTuple(2), pyTuple(1), false, hooks])],
  ]);
  const count = Buffer.alloc(8);
  const data = Buffer.alloc(24);
  for (let i = 0; i < 6; i++) {
    if (littleEndian) data.writeFloatLE(i + 0.5, i * 4);
    else data.writeFloatBE(i + 0.5, i * 4);
  }
  if (littleEndian) count.writeBigInt64LE(6n);
  else count.writeBigInt64BE(6n);
  const sysInfo = new Map<string, unknown>([['protocol_version', 1001], ['little_endian', littleEndian], ['type_sizes', new Map([['short', 2], ['int', 4], ['long', 4]])]]);
  return Buffer.concat([pickle(0x1950a86a20f9469cfc6cn), pickle(1001), pickle(sysInfo), pickle(main), pickle(['root']), count, data]);
}
