/**
 * The error a call throws. Errors made by the native addon belong to Node's main realm, while jest
 * runs tests in a separate one, so tests compare `name` rather than using instanceof.
 */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the call to throw, but it returned');
}

export async function rejected(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected the promise to reject, but it resolved');
}
