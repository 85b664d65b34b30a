// ESM entry point: re-exports the CommonJS build, so `import` and `require`
// share one copy of the library (one set of classes, so `instanceof` agrees,
// and one load of the native addon). Node finds the names through
// cjs-module-lexer, which reads tsc's `exports.X = ...` output.
export * from '../dist/index.js'
