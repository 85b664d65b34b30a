/**
 * The errors odyssey-rnn throws. Each one extends the built-in class a caller
 * would expect (`TypeError` for an argument of the wrong type, `RangeError`
 * for one of the right type but the wrong size or value, `Error` otherwise)
 * and carries a stable `code`, the same whether the facade, the native addon
 * or the pure-TypeScript backend found the problem.
 */

/** `error.code` of every error this library throws. */
export type ErrorCode =
  /** An argument of the wrong type: not a typed array, a non-integer size, an unknown option. */
  | 'ODYSSEY_TYPE'
  /** A typed array of the other float type than the layer's dtype. */
  | 'ODYSSEY_DTYPE'
  /** An array whose length or shape does not fit the layer or the batch. */
  | 'ODYSSEY_SHAPE'
  /** A sequence length outside 1..time. */
  | 'ODYSSEY_LENGTH'
  /** A scalar or option outside its domain (a negative clip, an unknown variant). */
  | 'ODYSSEY_INVALID'
  /** NaN or ±Infinity where finite numbers are required. */
  | 'ODYSSEY_NON_FINITE'
  /** A weight name the layer does not have. */
  | 'ODYSSEY_KEY'
  /** A call that needs an earlier one first: backward before forward. */
  | 'ODYSSEY_STATE'
  /** A file could not be read or written. */
  | 'ODYSSEY_IO'
  /** A file was read but does not hold what it should: malformed JSON, a bad header, a record missing a field. */
  | 'ODYSSEY_FORMAT'
  /** A malformed checkpoint. */
  | 'ODYSSEY_CHECKPOINT'
  /** A model feature a format cannot express (an LSTM variant ONNX has no operator for). */
  | 'ODYSSEY_UNSUPPORTED'
  /** The native addon could not be loaded on this platform. */
  | 'ODYSSEY_NATIVE_LOAD'
  /** An optional peer dependency the call needs is not installed (vega for reports). */
  | 'ODYSSEY_DEPENDENCY'
  /** A Rust panic, caught at the native boundary: a bug in odyssey-rnn, please report it. */
  | 'ODYSSEY_PANIC'
  /** Any other failure inside the native addon. */
  | 'ODYSSEY_NATIVE'
  /** An operation stopped by its `AbortSignal` (`Model.fit`). */
  | 'ODYSSEY_ABORTED'

/** Wrong argument type (`ODYSSEY_TYPE`, `ODYSSEY_DTYPE`). */
export class OdysseyTypeError extends TypeError {
  override readonly name = 'OdysseyTypeError'
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** Right type, wrong size or value (shapes, lengths, NaN, unknown names, call order). */
export class OdysseyRangeError extends RangeError {
  override readonly name = 'OdysseyRangeError'
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** Everything that is not the caller's argument: files, the native addon, internal bugs. */
export class OdysseyError extends Error {
  override readonly name = 'OdysseyError'
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/**
 * A file whose content is not what it should be (code `ODYSSEY_FORMAT`): the
 * message starts with the file path and, when known, the byte offset of the problem.
 */
export class OdysseyFileError extends OdysseyError {
  readonly byteOffset?: number

  constructor(
    readonly file: string,
    /** The message without its location. */
    readonly problem: string,
    details: { byteOffset?: number } = {},
    options?: ErrorOptions,
  ) {
    const at = details.byteOffset === undefined ? '' : `at byte ${details.byteOffset}: `
    super('ODYSSEY_FORMAT', `${file}: ${at}${problem}`, options)
    this.byteOffset = details.byteOffset
  }
}

/**
 * An operation stopped by its `AbortSignal`. Named `'AbortError'` like the
 * DOM's, so `error.name === 'AbortError'` checks work; `cause` is the
 * signal's reason. `Model.fit` attaches the history of the epochs that
 * finished as `result`.
 */
export class OdysseyAbortError<Result = unknown> extends Error {
  override readonly name = 'AbortError'
  readonly code: ErrorCode = 'ODYSSEY_ABORTED'
  constructor(
    message: string,
    /** What the operation had done before it stopped. */
    readonly result?: Result,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

export type AnyOdysseyError = OdysseyTypeError | OdysseyRangeError | OdysseyError | OdysseyAbortError

export function isOdysseyError(error: unknown): error is AnyOdysseyError {
  return (
    error instanceof OdysseyTypeError ||
    error instanceof OdysseyRangeError ||
    error instanceof OdysseyError ||
    error instanceof OdysseyAbortError
  )
}

type ErrorClass = new (code: ErrorCode, message: string, options?: ErrorOptions) => AnyOdysseyError

/** The class of each code the native addon throws (crates/node/src/error.rs). */
const NATIVE_ERROR_CLASSES: Readonly<Record<string, ErrorClass>> = {
  ODYSSEY_DTYPE: OdysseyTypeError,
  ODYSSEY_SHAPE: OdysseyRangeError,
  ODYSSEY_LENGTH: OdysseyRangeError,
  ODYSSEY_INVALID: OdysseyRangeError,
  ODYSSEY_NON_FINITE: OdysseyRangeError,
  ODYSSEY_KEY: OdysseyRangeError,
  ODYSSEY_STATE: OdysseyRangeError,
  ODYSSEY_IO: OdysseyError,
  ODYSSEY_CHECKPOINT: OdysseyError,
  ODYSSEY_PANIC: OdysseyError,
}

/** Between the code and the message of a coded rejection of the WebAssembly build. */
const CODE_SEPARATOR = '\u001f'

/**
 * The typed error for an exception thrown by the native addon: its `code`
 * picks the class; anything without a known code (napi's own argument
 * conversion errors) becomes `ODYSSEY_NATIVE`. The original is the `cause`.
 */
export function fromNativeError(error: unknown): AnyOdysseyError {
  if (isWasmTrap(error)) {
    return new OdysseyError(
      'ODYSSEY_PANIC',
      `odyssey-rnn internal error (Rust panic in the WebAssembly build: ${error.message}). ` +
        'WebAssembly cannot unwind, so the panic stopped the call midway and may have left the module ' +
        'holding a lock or its allocator mid-update: restart the process (reload the page) before ' +
        'calling odyssey-rnn again.',
      { cause: error },
    )
  }
  let code = (error as { code?: unknown } | null)?.code
  let message = error instanceof Error ? error.message : String(error)
  // The WebAssembly build's rejections carry their code at the head of the message (crates/node/src/tasks.rs).
  const separator = message.indexOf(CODE_SEPARATOR)
  if (separator > 0 && message.startsWith('ODYSSEY_')) {
    code = message.slice(0, separator)
    message = message.slice(separator + 1)
  }
  const known = typeof code === 'string' ? NATIVE_ERROR_CLASSES[code] : undefined
  if (known === undefined) return new OdysseyError('ODYSSEY_NATIVE', `native addon: ${message}`, { cause: error })
  return new known(code as ErrorCode, message, { cause: error })
}

/**
 * A Rust panic in the WebAssembly build: the module aborts (`unreachable`), which reaches JS as a
 * `WebAssembly.RuntimeError` instead of the native addon's caught `ODYSSEY_PANIC` (crates/node/src/lib.rs).
 */
function isWasmTrap(error: unknown): error is Error {
  // Read through globalThis: the library compiles against ES2022 without the DOM lib, which declares WebAssembly.
  const runtimeError = (globalThis as { WebAssembly?: { RuntimeError: abstract new () => Error } }).WebAssembly
    ?.RuntimeError
  return runtimeError !== undefined && error instanceof runtimeError
}
