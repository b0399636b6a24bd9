/** The version in package.json, found upwards from this file (webhook/cli, dist/webhook/cli, dist/bundle). */
export async function packageVersion(): Promise<string> {
  const { readFile } = await import('node:fs/promises')
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const manifest = JSON.parse(await readFile(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string }
      if (manifest.name === 'nlb-guard' && manifest.version !== undefined) return manifest.version
    } catch (error: unknown) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    if (dir.pathname === '/') return 'unknown'
  }
}
