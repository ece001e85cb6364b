/**
 * Reading and writing PyTorch weight files without Python: torch.save's zip and legacy formats,
 * safetensors, safe pickles, state-dict loading. See each module for details.
 */
export { CheckpointError } from './errors';
export {
  UnpicklingError,
  OrderedDict,
  PyObject,
  PyGlobal,
  PyReduce,
  PyPersistent,
  PyFloat,
  SET_STATE,
  BUILTIN_DATA_GLOBALS,
  pickle,
  unpickle,
  unpickleAt,
  pyClass,
  pyTuple,
  isPyTuple,
  typeName,
} from './pickle';
export type { Allowlist, GlobalDef, UnpickleOptions, PickleOptions } from './pickle';
export {
  TORCH_GLOBALS,
  StorageType,
  StorageRef,
  TensorRef,
  detectFormat,
  readTorchFile,
  readTorchFileContents,
  readStateDict,
  readSafetensors,
} from './torch-file';
export type { WeightFileFormat, ReadOptions, ReadStateDictOptions, TorchFileContents, StorageTargets, TensorLayout } from './torch-file';
export { saveTorchFile, saveSafetensors, ELEMENT_SIZES } from './torch-save';
export type { SaveOptions, StateDictWithMetadata, StateDictMetadata } from './torch-save';
export { loadStateDict, renamePrefixes, renameKeys, stripPrefix, StateDictMismatch } from './state-dict';
export type { LoadStateDictOptions, LoadStateDictResult, Rename, PrefixMap } from './state-dict';
export { readPickleFile } from './pickle-file';
export type { ReadPickleOptions } from './pickle-file';
export { writeWeightFile } from './atomic';
export { messageOf } from './errors';
