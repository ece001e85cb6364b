/**
 * Argument checks and their messages, in one place. Every library entry point validates what it
 * is given with these and throws `Expected <what> for <name> but received <value>`: a TypeError
 * for a value of the wrong kind, a RangeError for one out of range (as sharp does).
 */

/** A received value as a message shows it: `number 0.5`, `the string "abc"`, `an array of length 3`, `null`. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (typeof v === 'number' && Number.isNaN(v)) return 'NaN (not a number)';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (typeof v === 'object') {
    const ctor = (v as object).constructor?.name;
    return ctor && ctor !== 'Object' ? `an object (${ctor})` : 'an object';
  }
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  return `${typeof v} ${String(v)}`;
}

/** Throws TypeError `Expected <what> for <name> but received <value>`. */
export function expected(what: string, name: string, value: unknown): never {
  throw new TypeError(`Expected ${what} for ${name} but received ${describe(value)}`);
}

/** An integer from `min` to `max`, else a TypeError (not an integer) or RangeError (out of range) naming `name`. */
export function checkInt(v: unknown, name: string, min = -Infinity, max = Infinity): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) expected('an integer', name, v);
  if (v < min || v > max) {
    const range = max === Infinity ? `>= ${min}` : min === -Infinity ? `<= ${max}` : `from ${min} to ${max}`;
    throw new RangeError(`Expected an integer ${range} for ${name} but received ${v}`);
  }
  return v;
}

/** `value` (or `fallback` when it is undefined) as an integer >= 1. */
export function positiveInt(value: unknown, name: string, fallback?: number): number {
  return checkInt(value === undefined ? fallback : value, name, 1);
}

/** A finite number above 0, else a TypeError (not a number) or RangeError (0 or less) naming `name`. */
export function positiveNumber(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) expected('a finite number', name, v);
  if (v <= 0) throw new RangeError(`Expected a number above 0 for ${name} but received ${v}`);
  return v;
}

/** An optional integer >= min: undefined stays undefined. */
export function optionalInt(value: unknown, name: string, min = -Infinity, max = Infinity): number | undefined {
  return value === undefined ? undefined : checkInt(value, name, min, max);
}

/** A boolean, or `fallback` when `value` is undefined; else a TypeError naming `name`. */
export function optionalBool(value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') expected('a boolean', name, value);
  return value;
}

/** One of `choices`, else a TypeError listing them. */
export function checkChoice<T extends string>(value: unknown, name: string, choices: readonly T[]): T {
  if (typeof value !== 'string' || !choices.includes(value as T)) expected(choices.map((c) => `'${c}'`).join(', ').replace(/, ([^,]*)$/, ' or $1'), name, value);
  return value as T;
}
