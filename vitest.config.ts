import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['__test__/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // One fork per file keeps native thread pools from oversubscribing 2 cores.
    pool: 'forks',
    maxWorkers: 2,
  },
})
