/**
 * The book's `vocabulary.pkl`: `pickle.dump(vocab)` of its `Vocab` class, defined in the notebook,
 * hence in module `__main__`, with attributes `w2i` (word → id), `i2w` (id → word) and `index`
 * (the next id). Read with the safe unpickler: nothing in the file runs, the class becomes a
 * PyObject whose `__dict__` comes from BUILD, and any other global is refused.
 */
import * as fs from 'fs';
import { Vocabulary } from './vocabulary';
import { BUILTIN_DATA_GLOBALS, CheckpointError, PyObject, UnpicklingError, messageOf, pyClass, readPickleFile, typeName, type GlobalDef } from '../serialization';

/** The book's vocabulary, as its pickle holds it. */
export interface BookVocabulary {
  /** The words, indexed by id (from `i2w`). */
  words: string[];
  /** `w2i`: word → id. */
  w2i: Map<string, number>;
  /** `i2w`: id → word. */
  i2w: Map<number, string>;
  /** `index`: the next free id (= the number of words). */
  index: number;
}

export interface ReadVocabularyOptions {
  /** Qualified names the class may have (default `['__main__.Vocab']`, the notebook's). */
  classNames?: string[];
  name?: string;
}

/**
 * Reads the book's `vocabulary.pkl` with the safe reader, checking that `w2i` and `i2w` are
 * inverse maps over ids 0..n-1 and that `index` is n. Any other global in the file is refused.
 */
export async function readBookVocabularyPickle(input: string | Uint8Array, opts: ReadVocabularyOptions = {}): Promise<BookVocabulary> {
  const name = opts.name ?? (typeof input === 'string' ? input : '<buffer>');
  const classNames = opts.classNames ?? ['__main__.Vocab'];
  const allow: Record<string, GlobalDef> = {
    // Protocols 0 and 1 create the instance through copyreg._reconstructor(cls, object, None).
    'copyreg._reconstructor': BUILTIN_DATA_GLOBALS['copyreg._reconstructor'],
    'builtins.object': BUILTIN_DATA_GLOBALS['builtins.object'],
  };
  for (const c of classNames) allow[c] = pyClass(c);
  let v: unknown;
  try {
    v = await readPickleFile(input, { allow, name });
  } catch (e) {
    if (e instanceof UnpicklingError || e instanceof CheckpointError) throw e;
    throw new CheckpointError(messageOf(e), { file: name, cause: e });
  }
  const bad = (why: string): never => {
    throw new CheckpointError(`not the book's vocabulary pickle: ${why}`, { file: name });
  };
  if (!(v instanceof PyObject)) return bad(`it holds a ${typeName(v)}, not a Vocab object`);
  const w2i = v.get('w2i');
  const i2w = v.get('i2w');
  const index = v.get('index');
  if (!(w2i instanceof Map)) return bad(`w2i is a ${typeName(w2i)}, not a dict`);
  if (!(i2w instanceof Map)) return bad(`i2w is a ${typeName(i2w)}, not a dict`);
  const words: string[] = new Array<string>(i2w.size);
  for (const [id, w] of i2w) {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= i2w.size) bad(`i2w has id ${String(id)}, outside 0..${i2w.size - 1}`);
    if (typeof w !== 'string') bad(`i2w[${String(id)}] is a ${typeName(w)}, not a str`);
    words[id as number] = w as string;
  }
  if (w2i.size !== words.length) bad(`w2i has ${w2i.size} words but i2w has ${words.length}`);
  for (const [w, id] of w2i) {
    if (typeof w !== 'string') bad(`w2i has a key of type ${typeName(w)}`);
    if (typeof id !== 'number' || words[id] !== w) bad(`w2i[${JSON.stringify(w)}] = ${String(id)} but i2w[${String(id)}] = ${JSON.stringify(words[id as number])}`);
  }
  if (index !== words.length) bad(`index is ${String(index)} but there are ${words.length} words`);
  return { words, w2i: w2i as Map<string, number>, i2w: i2w as Map<number, string>, index: index as number };
}

/**
 * Loads a vocabulary from torchcap JSON, a JSON array of words, or the book's vocabulary.pkl,
 * told apart by their first byte (a pickle's protocol mark 0x80, JSON's `{` or `[`) before the
 * file's name; a file that is neither is read as its name says, and that reader names the problem.
 */
export async function loadVocabulary(file: string): Promise<Vocabulary> {
  if (isPickle(file)) return Vocabulary.fromWords((await readBookVocabularyPickle(file)).words);
  return Vocabulary.load(file);
}

/** Whether the file is a pickle by its first byte (or, for neither a pickle's nor JSON's, by its name). Unreadable files go to the JSON reader, which names the problem. */
function isPickle(file: string): boolean {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const head = Buffer.alloc(64);
    const n = fs.readSync(fd, head, 0, head.length, 0);
    if (n > 0 && head[0] === 0x80) return true;
    const text = head.subarray(0, n).toString('latin1').replace(/^\xef\xbb\xbf/, '').trimStart();
    if (text[0] === '{' || text[0] === '[') return false;
    return file.endsWith('.pkl');
  } catch {
    return false;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
