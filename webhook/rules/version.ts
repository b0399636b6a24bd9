import semver from 'semver'

/** A Kubernetes server version, as `/version` reports it (`v1.30.2-eks-1a2b3c` and the like). */
export interface KubeVersion {
  readonly major: number
  readonly minor: number
  readonly patch: number
  /** As given, for messages. */
  readonly text: string
}

export class InvalidKubeVersionError extends Error {
  override name = 'InvalidKubeVersionError'
}

export function parseKubeVersion(text: string): KubeVersion {
  // coerce keeps major.minor.patch and drops vendor suffixes such as -eks-… or +k3s1.
  const parsed = semver.coerce(text)
  if (parsed === null) throw new InvalidKubeVersionError(`not a Kubernetes version: "${text}" (expected e.g. 1.30.2 or v1.30.2-eks-1)`)
  return { major: parsed.major, minor: parsed.minor, patch: parsed.patch, text: parsed.version }
}

export function atLeast(version: KubeVersion, major: number, minor: number): boolean {
  return version.major > major || (version.major === major && version.minor >= minor)
}
