/**
 * Promise.all for work whose failures a user reads: waits for every promise to settle, then rejects
 * with the first failure in the order given (not whichever happened to fail first), so the same bad
 * inputs always give the same message.
 */
export async function allInOrder<T extends readonly unknown[]>(values: T): Promise<{ -readonly [K in keyof T]: Awaited<T[K]> }> {
  const settled = await Promise.allSettled(values);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as { -readonly [K in keyof T]: Awaited<T[K]> };
}
