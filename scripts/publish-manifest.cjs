'use strict'
// `node scripts/publish-manifest.cjs <package.json>` rewrites that package.json
// into the main package's published manifest. The release workflow runs it on
// the checkout after `napi prepublish`; __test__/install.test.ts on the packed
// copy it installs, so both publish the same thing.
const { readdirSync, readFileSync, writeFileSync } = require('node:fs')
const { join } = require('node:path')

const NPM_DIR = join(__dirname, '..', 'npm')

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'))
}

/** `{ name: version }` of every platform package in npm/ — what `napi prepublish` declares. */
function platformPackages() {
  const manifests = readdirSync(NPM_DIR).map((dir) => readJson(join(NPM_DIR, dir, 'package.json')))
  return Object.fromEntries(manifests.map(({ name, version }) => [name, version]))
}

/**
 * The published form of the checkout's manifest: every platform package as an
 * optional dependency, and no `prepare`. `prepare` builds the addon from source
 * in a clone; npm never runs it for a registry install, yet npm 11 lists it among
 * the install scripts a user has to approve.
 */
function publishedManifest(manifest) {
  const { prepare, ...scripts } = manifest.scripts ?? {}
  return { ...manifest, scripts, optionalDependencies: { ...manifest.optionalDependencies, ...platformPackages() } }
}

if (require.main === module) {
  const [path] = process.argv.slice(2)
  if (path === undefined) throw new Error('usage: node scripts/publish-manifest.cjs <package.json>')
  writeFileSync(path, `${JSON.stringify(publishedManifest(readJson(path)), null, 2)}\n`)
}

module.exports = { publishedManifest }
