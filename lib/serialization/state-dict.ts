/**
 * Loading a state dict into a model's tensors: every name checked first, then every value copied
 * in place. Strict by default, as `load_state_dict` is: one error lists every missing name, every
 * unexpected name and every shape that differs, and nothing is changed when there is any.
 * Also: renaming names by prefix (torchvision's `conv1.*` is the book's `resnet_module.0.*`).
 */
import { Tensor, noGrad } from '../core/tensor';
import type { DType } from '../core/binding';
import { CheckpointError } from './errors';

/** Renames one name; return null to drop it. */
export type Rename = (name: string) => string | null;

export interface LoadStateDictOptions {
  /** Refuse missing and unexpected names (default true). Shape and dtype mismatches are always refused. */
  strict?: boolean;
  /** Names (target's or source's) that are left alone: not loaded, not reported as missing or unexpected. */
  ignore?: (name: string) => boolean;
  /** Renames the source's names before matching (see {@link renamePrefixes}). */
  rename?: Rename | PrefixMap;
  /** Names the source in messages (a file name). */
  source?: string;
  /** Only check (and throw as a load would); copy nothing. */
  dryRun?: boolean;
}

export interface LoadStateDictResult {
  /** Target names that received a value. */
  loaded: string[];
  /** Target names with no value in the source (non-strict loads only; strict ones throw). */
  missing: string[];
  /** Source names with no target (non-strict loads only). */
  unexpected: string[];
  /** Names skipped by `ignore` or dropped by `rename`. */
  ignored: string[];
}

/** A mismatch between a state dict and its target; lists every problem found. */
export class StateDictMismatch extends CheckpointError {
  constructor(
    message: string,
    readonly missing: string[],
    readonly unexpected: string[],
    readonly mismatched: string[],
    file?: string,
  ) {
    super(message, { file });
  }
}

const KIND: Readonly<Record<DType, 'float' | 'int' | 'bool'>> = {
  float32: 'float',
  float64: 'float',
  float16: 'float',
  bfloat16: 'float',
  int64: 'int',
  int32: 'int',
  uint8: 'int',
  bool: 'bool',
};

const LIST_MAX = 20;

function listed(title: string, names: string[]): string {
  const shown = names.slice(0, LIST_MAX).join(', ');
  return `  ${title} (${names.length}): ${shown}${names.length > LIST_MAX ? `, … and ${names.length - LIST_MAX} more` : ''}`;
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

/** Prefix pairs: source prefix → target prefix (null: drop those names), as a record or a list. */
export type PrefixMap = Readonly<Record<string, string | null>> | ReadonlyArray<readonly [string, string | null]>;

/**
 * A renamer that replaces module-path prefixes: with `{conv1: 'resnet_module.0', layer1:
 * 'resnet_module.4', fc: null}`, `conv1.weight` → `resnet_module.0.weight`, `layer1.0.bn1.bias` →
 * `resnet_module.4.0.bn1.bias`, and `fc.*` is dropped. A prefix matches a whole name or a leading
 * run of dotted parts (`layer1` never matches `layer10.x`); the longest match wins. The source
 * prefix `''` matches every name (`{'': 'module'}` adds a prefix); the target `''` strips it
 * (`{module: ''}`). Names no prefix matches are kept, or dropped with `dropUnmatched`.
 */
export function renamePrefixes(map: PrefixMap, opts: { dropUnmatched?: boolean } = {}): Rename {
  const entries = Array.isArray(map) ? [...(map as ReadonlyArray<readonly [string, string | null]>)] : Object.entries(map as Record<string, string | null>);
  const pairs: [string, string | null][] = entries.map(([a, b]) => {
    if (typeof a !== 'string' || (typeof b !== 'string' && b !== null)) throw new TypeError('renamePrefixes needs string prefixes (or null to drop)');
    return [a.replace(/\.$/, ''), b === null ? null : b.replace(/\.$/, '')];
  });
  const seen = new Set<string>();
  for (const [a] of pairs) {
    if (seen.has(a)) throw new TypeError(`renamePrefixes: prefix '${a}' is given twice`);
    seen.add(a);
  }
  pairs.sort((x, y) => y[0].length - x[0].length);
  return (name) => {
    for (const [from, to] of pairs) {
      let rest: string | undefined;
      if (from === '') rest = name;
      else if (name === from) rest = '';
      else if (name.startsWith(`${from}.`)) rest = name.slice(from.length + 1);
      if (rest === undefined) continue;
      if (to === null) return null;
      if (to === '') return rest === '' ? null : rest;
      return rest === '' ? to : `${to}.${rest}`;
    }
    return opts.dropUnmatched ? null : name;
  };
}

/** A renamer that removes a leading prefix where present (`stripPrefix('module.')` for DataParallel files). */
export function stripPrefix(prefix: string): Rename {
  return (name) => (name.startsWith(prefix) ? name.slice(prefix.length) : name);
}

/**
 * A copy of `dict` with renamed keys (values are shared, not copied). Throws naming both sources
 * when two names map to the same new name.
 */
export function renameKeys<T>(dict: ReadonlyMap<string, T>, rename: Rename | PrefixMap): Map<string, T> {
  const fn = typeof rename === 'function' ? rename : renamePrefixes(rename);
  const out = new Map<string, T>();
  const from = new Map<string, string>();
  for (const [k, v] of dict) {
    const n = fn(k);
    if (n === null) continue;
    if (typeof n !== 'string') throw new TypeError(`rename returned ${typeof n} for '${k}'`);
    if (out.has(n)) throw new CheckpointError(`renaming maps both '${from.get(n)}' and '${k}' to '${n}'`);
    out.set(n, v);
    from.set(n, k);
  }
  return out;
}

/**
 * Copies `source` into `target`'s tensors in place (without recording gradients), after checking
 * every name and shape. A value of another dtype of the same kind (float16 into float32) is
 * converted; across kinds (int into float) it is refused. Nothing is copied if any check fails.
 */
export function loadStateDict(target: ReadonlyMap<string, Tensor>, source: ReadonlyMap<string, Tensor>, opts: LoadStateDictOptions = {}): LoadStateDictResult {
  const strict = opts.strict ?? true;
  const ignore = opts.ignore ?? (() => false);
  const ignored: string[] = [];
  let src: ReadonlyMap<string, Tensor> = source;
  if (opts.rename) {
    const fn = typeof opts.rename === 'function' ? opts.rename : renamePrefixes(opts.rename);
    for (const k of source.keys()) if (fn(k) === null) ignored.push(k);
    src = renameKeys(source, fn);
  }

  const missing: string[] = [];
  const unexpected: string[] = [];
  const mismatched: string[] = [];
  const pairs: [string, Tensor, Tensor][] = [];
  for (const [name, t] of target) {
    if (ignore(name)) {
      ignored.push(name);
      continue;
    }
    const s = src.get(name);
    if (s === undefined) {
      missing.push(name);
      continue;
    }
    if (!(s instanceof Tensor)) {
      mismatched.push(`${name}: the file has a ${typeof s}, not a tensor`);
      continue;
    }
    const ts = t.shape;
    const ss = s.shape;
    if (ts.length !== ss.length || ts.some((d, i) => d !== ss[i])) {
      mismatched.push(`${name}: expected ${shapeText(ts)}, file has ${shapeText(ss)}`);
      continue;
    }
    if (KIND[t.dtype] !== KIND[s.dtype]) {
      mismatched.push(`${name}: expected ${t.dtype}, file has ${s.dtype}`);
      continue;
    }
    pairs.push([name, t, s]);
  }
  for (const name of src.keys()) {
    if (target.has(name)) continue;
    if (ignore(name)) ignored.push(name);
    else unexpected.push(name);
  }

  const refuse = mismatched.length > 0 || (strict && (missing.length > 0 || unexpected.length > 0));
  if (refuse) {
    const lines = ['Error(s) loading state dict:'];
    if (strict && missing.length) lines.push(listed('missing keys', missing));
    if (strict && unexpected.length) lines.push(listed('unexpected keys', unexpected));
    if (mismatched.length) {
      lines.push(`  mismatched (${mismatched.length}):`);
      for (const m of mismatched.slice(0, LIST_MAX)) lines.push(`    ${m}`);
      if (mismatched.length > LIST_MAX) lines.push(`    … and ${mismatched.length - LIST_MAX} more`);
    }
    throw new StateDictMismatch(lines.join('\n'), strict ? missing : [], strict ? unexpected : [], mismatched, opts.source);
  }

  if (!opts.dryRun) {
    noGrad(() => {
      for (const [, t, s] of pairs) t.copyFrom(s);
    });
  }
  return { loaded: pairs.map(([n]) => n), missing, unexpected, ignored };
}
