/**
 * Proof that `npm install odyssey-rnn` needs neither Rust nor a network: the main package and
 * this platform's binary package are packed as they would be published, installed from the
 * tarballs into a fresh project with cargo/rustc off PATH and npm offline, and then used through
 * `require` and `import`, the root and its subpaths `/onnx`, `/report` and `/vqa` (scripts/install-smoke). A second project installs the main package
 * alone: loading still works, native layers throw an error naming the platform and the fix, and
 * the pure-TypeScript fallback works when asked for.
 *
 * Reuses what `npm install` built: dist/ and native/odyssey-rnn.<platform>.node.
 */
import { spawnSync } from 'node:child_process'
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { publishedManifest } from '../scripts/publish-manifest.cjs'

const ROOT = resolve(__dirname, '..')
const BINARY_NAME = 'odyssey-rnn'
const PLATFORM_PACKED_BUDGET = 5 * 1024 * 1024
const MAIN_PACKED_BUDGET = 512 * 1024
/** Nothing listens here: an npm that tried the network would fail instead of downloading. */
const UNREACHABLE_REGISTRY = 'http://127.0.0.1:9/'
const SLOW = 180_000
/** The Node that loads the installed package; the release workflow sets the oldest one `engines` allows. */
const SMOKE_NODE = process.env.ODYSSEY_SMOKE_NODE || process.execPath

interface PackResult {
  filename: string
  size: number
  files: { path: string }[]
}

interface SmokeOutcome {
  before: number
  after: number
  message?: string
}

/** The addon `npm install` built for this machine, e.g. `linux-x64-gnu` for `odyssey-rnn.linux-x64-gnu.node`. */
function hostPlatformSuffix(): string {
  const prefix = `${BINARY_NAME}.${process.platform}-${process.arch}`
  const built = readdirSync(join(ROOT, 'native')).filter((f) => f.startsWith(prefix) && f.endsWith('.node'))
  if (built.length !== 1) {
    throw new Error(`expected one native/${prefix}*.node (run \`npm install\` first), found [${built.join(', ')}]`)
  }
  return built[0].slice(BINARY_NAME.length + 1, -'.node'.length)
}

/** PATH without any directory that holds cargo or rustc: the installs must not be able to compile. */
function pathWithoutRust(): string {
  const hasRust = (dir: string) =>
    ['cargo', 'rustc', 'cargo.exe', 'rustc.exe'].some((tool) => existsSync(join(dir, tool)))
  return (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => dir !== '' && !hasRust(dir))
    .join(delimiter)
}

/** The parent's environment minus what would steer npm or the loader (npm_config_*, overrides), PATH without Rust. */
function isolatedEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // `path$` also drops Windows' `Path`, which would otherwise sit next to the new PATH.
  const replaced = /^(npm_|napi_rs_|odyssey_backend$|node_options$|path$)/i
  const kept = Object.entries(process.env).filter(([key]) => !replaced.test(key))
  return { ...Object.fromEntries(kept), PATH: pathWithoutRust(), ...extra }
}

/** Runs a command to completion; its stdout and stderr, or an error that quotes both. */
function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = isolatedEnv()) {
  // npm is npm.cmd on Windows, which only a shell can start.
  const result = spawnSync(command, args, { cwd, env, encoding: 'utf8', shell: process.platform === 'win32' })
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stdout}\n${result.stderr}`,
    )
  }
  return { stdout: result.stdout, stderr: result.stderr }
}

function npmPack(dir: string, destination: string): PackResult {
  const [result] = JSON.parse(
    run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', destination], dir).stdout,
  ) as PackResult[]
  return result
}

/**
 * Packs the main package as it is published: the files `npm pack` selects, with the manifest
 * scripts/publish-manifest.cjs makes. Returns the tarball and the first pack's report.
 */
function packMainPackage(work: string, tarballs: string): { tarball: string; report: PackResult } {
  const report = npmPack(ROOT, work)
  // Relative names only: GNU tar (Git for Windows) would read `C:\...` as a remote host.
  run('tar', ['-xzf', report.filename], work)
  const manifestPath = join(work, 'package', 'package.json')
  const manifest: unknown = JSON.parse(readFileSync(manifestPath, 'utf8'))
  writeFileSync(manifestPath, JSON.stringify(publishedManifest(manifest), null, 2))
  return { tarball: join(tarballs, npmPack(join(work, 'package'), tarballs).filename), report }
}

/** npm/<suffix> plus its built files (the addon, or the wasm build and its loaders), packed: what `napi artifacts` + `napi prepublish` publish. */
function packPlatformPackage(suffix: string, work: string, tarballs: string): { tarball: string; report: PackResult } {
  const dir = join(work, suffix)
  cpSync(join(ROOT, 'npm', suffix), dir, { recursive: true })
  const { files } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { files: string[] }
  for (const file of files) copyFileSync(join(ROOT, 'native', file), join(dir, file))
  const report = npmPack(dir, tarballs)
  return { tarball: join(tarballs, report.filename), report }
}

/**
 * The runtime dependencies of the packages in `roots` (the main package by default), packed from
 * this checkout's node_modules, so the offline installs need no registry and no npm cache.
 * Assumes npm's hoisted layout.
 */
function packRuntimeDependencies(tarballs: string, roots: string[] = [ROOT]): string[] {
  const packed = new Map<string, string>()
  const visit = (manifestDir: string) => {
    const manifest = JSON.parse(readFileSync(join(manifestDir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>
    }
    for (const name of Object.keys(manifest.dependencies ?? {})) {
      if (packed.has(name)) continue
      const dir = join(ROOT, 'node_modules', name)
      packed.set(name, join(tarballs, npmPack(dir, tarballs).filename))
      visit(dir)
    }
  }
  for (const root of roots) visit(root)
  return [...packed.values()]
}

/**
 * A new project with the tarballs installed from disk only, and the smoke scripts next to it.
 * Returns what npm said, which must not ask the user to approve any install script.
 */
function installConsumer(dir: string, cache: string, tarballs: string[], npmFlags: string[] = []): string {
  cpSync(join(ROOT, 'scripts', 'install-smoke'), dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }))
  const offline = ['--offline', '--no-audit', '--no-fund', '--cache', cache, '--registry', UNREACHABLE_REGISTRY]
  const { stdout, stderr } = run('npm', ['install', ...offline, ...npmFlags, ...tarballs], dir)
  return stdout + stderr
}

function smoke(
  project: string,
  entry: 'require.cjs' | 'import.mjs',
  scenario: string,
  env = isolatedEnv(),
): SmokeOutcome {
  return JSON.parse(run(SMOKE_NODE, [entry, scenario], project, env).stdout) as SmokeOutcome
}

describe('installing the packed packages with no Rust and no network', () => {
  let work: string
  let suffix: string
  let main: { tarball: string; report: PackResult }
  let platform: { tarball: string; report: PackResult }
  /** Has the main and the platform package. */
  let withBinary: string
  let withBinaryNpmOutput: string
  /** Has the main package only. */
  let withoutBinary: string

  beforeAll(() => {
    suffix = hostPlatformSuffix()
    work = mkdtempSync(join(tmpdir(), 'odyssey-install-'))
    const tarballs = join(work, 'tarballs')
    for (const dir of [tarballs, join(work, 'main'), join(work, 'platform')]) mkdirSync(dir)
    main = packMainPackage(join(work, 'main'), tarballs)
    platform = packPlatformPackage(suffix, join(work, 'platform'), tarballs)
    const dependencies = packRuntimeDependencies(tarballs)
    withBinary = join(work, 'with-binary')
    withBinaryNpmOutput = installConsumer(withBinary, join(work, 'cache-with-binary'), [
      main.tarball,
      platform.tarball,
      ...dependencies,
    ])
    withoutBinary = join(work, 'without-binary')
    installConsumer(withoutBinary, join(work, 'cache-without-binary'), [main.tarball, ...dependencies])
  }, SLOW)

  afterAll(() => {
    if (work !== undefined) rmSync(work, { recursive: true, force: true })
  })

  it('runs npm where cargo and rustc cannot be started', () => {
    for (const tool of ['cargo', 'rustc']) {
      expect(spawnSync(tool, ['--version'], { env: isolatedEnv() }).error).toMatchObject({ code: 'ENOENT' })
    }
  })

  it('keeps the main package small: JavaScript and types, no binaries, sources or test data', () => {
    const paths = main.report.files.map((f) => f.path)
    for (const entry of ['index', 'onnx', 'report', 'vqa']) expect(paths).toContain(`esm/${entry}.mjs`)
    for (const entry of ['', 'onnx/', 'report/', 'vqa/']) expect(paths).toContain(`dist/${entry}index.js`)
    expect(paths).toContain('native/binding.cjs')
    const unwanted = /\.(node|map|safetensors)$|fixtures\/|^(__test__|crates|ts|npm|scripts|benches)\//
    expect(paths.filter((path) => unwanted.test(path))).toEqual([])
    expect(statSync(main.tarball).size).toBeLessThanOrEqual(MAIN_PACKED_BUDGET)
  })

  it('puts exactly one addon in the platform package, within 5 MB packed', () => {
    expect(platform.report.files.map((f) => f.path).sort()).toEqual(
      ['README.md', `${BINARY_NAME}.${suffix}.node`, 'package.json'].sort(),
    )
    expect(platform.report.size).toBeLessThanOrEqual(PLATFORM_PACKED_BUDGET)
  })

  it('installs without asking the user to approve install scripts', () => {
    expect(withBinaryNpmOutput).not.toMatch(/install scripts/i)
  })

  it('with the platform package: require and import load the addon, run an LSTM and train it', () => {
    for (const entry of ['require.cjs', 'import.mjs'] as const) {
      const { before, after } = smoke(withBinary, entry, 'with-binary')
      expect(after).toBeLessThan(before)
    }
  })

  it(
    'gives TypeScript the types of both conditions, the root and its subpaths',
    () => {
      const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
      expect(() => run(process.execPath, [tsc, '-p', withBinary], withBinary)).not.toThrow()
    },
    SLOW,
  )

  it('without it: loading works, a native layer names the platform and the fix, the js backend works', () => {
    expect(existsSync(join(withoutBinary, 'node_modules', `${BINARY_NAME}-${suffix}`))).toBe(false)
    for (const entry of ['require.cjs', 'import.mjs'] as const) {
      const { message } = smoke(withoutBinary, entry, 'without-binary')
      expect(message).toContain(`${BINARY_NAME}-${suffix}`)
      const byEnv = smoke(withoutBinary, entry, 'js-by-env', isolatedEnv({ ODYSSEY_BACKEND: 'js' }))
      expect(byEnv.after).toBeLessThan(byEnv.before)
    }
  })
})

const WASM_SUFFIX = 'wasm32-wasi'
const wasmBuilt = existsSync(join(ROOT, 'native', `${BINARY_NAME}.${WASM_SUFFIX}.wasm`))
if (!wasmBuilt && process.env.ODYSSEY_REQUIRE_WASM !== '1') {
  console.warn('install.test.ts: the wasm-only install is skipped: native/ has no wasm build (npm run build:wasm)')
}

describe.skipIf(!wasmBuilt && process.env.ODYSSEY_REQUIRE_WASM !== '1')(
  'installing the main package with only the WebAssembly package, no native binary, no Rust, no network',
  () => {
    let work: string
    let wasmOnly: string

    beforeAll(() => {
      work = mkdtempSync(join(tmpdir(), 'odyssey-install-wasm-'))
      const tarballs = join(work, 'tarballs')
      for (const dir of [tarballs, join(work, 'main'), join(work, 'platform')]) mkdirSync(dir)
      const main = packMainPackage(join(work, 'main'), tarballs)
      const wasm = packPlatformPackage(WASM_SUFFIX, join(work, 'platform'), tarballs)
      const dependencies = packRuntimeDependencies(tarballs, [ROOT, join(ROOT, 'npm', WASM_SUFFIX)])
      wasmOnly = join(work, 'wasm-only')
      // The wasm package says `cpu: ["wasm32"]`: named on the command line, npm installs it only with --force.
      installConsumer(wasmOnly, join(work, 'cache'), [main.tarball, wasm.tarball, ...dependencies], ['--force'])
    }, SLOW)

    afterAll(() => {
      if (work !== undefined) rmSync(work, { recursive: true, force: true })
    })

    it(
      'require and import fall back to it: layers agree with the reference and train, a Model fits and predicts',
      () => {
        const modules = join(wasmOnly, 'node_modules')
        expect(readdirSync(modules).filter((name) => name.startsWith(`${BINARY_NAME}-`))).toEqual([
          `${BINARY_NAME}-${WASM_SUFFIX}`,
        ])
        for (const entry of ['require.cjs', 'import.mjs'] as const) {
          const { before, after } = smoke(wasmOnly, entry, 'with-wasm')
          expect(after).toBeLessThan(before)
        }
      },
      SLOW,
    )
  },
)
