/** The `Model` class, `sequential` and their option and result types (layers, specs, data and fit live beside it). */
export * from './model'
