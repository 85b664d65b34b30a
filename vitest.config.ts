import { resolve } from 'node:path'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  // examples/ import the package by name, as a user would: in tests that is the sources, as for __test__/.
  resolve: { alias: [{ find: /^odyssey-rnn$/, replacement: resolve(__dirname, 'ts/index.ts') }] },
  test: {
    include: ['__test__/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One fork per file keeps native thread pools from oversubscribing 2 cores.
    pool: 'forks',
    maxWorkers: 2,
  },
})
