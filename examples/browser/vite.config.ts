/**
 * Builds the page (`npm run example:browser` builds it, then serves examples/browser/dist with
 * serve.mjs). The library is bundled from its TypeScript sources (ts/), with three swaps for the
 * browser: ts/native.ts by shims/native.ts (the WebAssembly build's browser loader),
 * `node:async_hooks` by shims/async-hooks.ts, and the Node file-system modules, which only
 * save/load use, by vite's empty browser stubs.
 */
import { fileURLToPath } from 'node:url'
import { defineConfig, type Plugin } from 'vite'

const here = (path: string) => fileURLToPath(new URL(path, import.meta.url))
const LIBRARY_LOADER = here('../../ts/native.ts')
const BROWSER_LOADER = here('./shims/native.ts')

/** Every import of ts/native.ts ('./native', '../native') gets the browser loader instead. */
function browserLoader(): Plugin {
  return {
    name: 'odyssey-browser-loader',
    enforce: 'pre',
    async resolveId(source, importer, options) {
      if (!source.endsWith('native') || importer === BROWSER_LOADER) return null
      const resolved = await this.resolve(source, importer, { ...options, skipSelf: true })
      return resolved?.id === LIBRARY_LOADER ? BROWSER_LOADER : null
    },
  }
}

// Threads need SharedArrayBuffer, which a browser gives only to a cross-origin isolated page.
const ISOLATION = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }

export default defineConfig({
  root: here('.'),
  base: './',
  plugins: [browserLoader()],
  resolve: {
    alias: [
      { find: /^odyssey-rnn$/, replacement: here('../../ts/index.ts') },
      { find: /^node:async_hooks$/, replacement: here('./shims/async-hooks.ts') },
    ],
  },
  build: { outDir: 'dist', emptyOutDir: true, target: 'esnext', chunkSizeWarningLimit: 4096 },
  worker: { format: 'es' },
  server: { headers: ISOLATION },
  preview: { headers: ISOLATION },
})
