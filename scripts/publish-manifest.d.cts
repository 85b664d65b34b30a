/** The main package's published manifest made from the checkout's (see publish-manifest.cjs). */
export function publishedManifest(manifest: unknown): Record<string, unknown>
