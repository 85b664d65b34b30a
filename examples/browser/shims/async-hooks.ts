/**
 * `node:async_hooks` for the browser, which has no async context (TC39's AsyncContext is not
 * shipped): `fit` (ts/model/fit.ts) marks its callbacks' window with an AsyncLocalStorage. Here
 * the store is seen by the synchronous part of `run`'s callback only, so a callback may call
 * the model before its first `await`, not after (the call is refused with ODYSSEY_STATE).
 * The page's callbacks only record what they are given.
 */
export class AsyncLocalStorage<T> {
  private store: T | undefined

  getStore(): T | undefined {
    return this.store
  }

  run<R>(store: T, callback: () => R): R {
    const outer = this.store
    this.store = store
    try {
      return callback()
    } finally {
      this.store = outer
    }
  }
}
