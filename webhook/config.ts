import { readFile } from 'node:fs/promises'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { DNS1035_LABEL, DNS1123_LABEL, DNS1123_SUBDOMAIN } from '../lib/dns.js'
import { ConfigError, errorMessage } from '../lib/errors.js'
import type { SidecarSettings } from './rules/pod.js'
import { parseKubeVersion } from './rules/version.js'

// Thrown from here; defined in the leaf lib/errors.ts so the CLI can catch it without loading zod.
export { ConfigError }

/**
 * nlb-guard's configuration: one YAML file (`--config`), then command-line flags on top, parsed
 * once by zod into one typed object. Nothing else in the code reads the environment.
 */

const port = z.number().int().min(1).max(65535)

const kubeVersion = z.string().refine(
  (text) => {
    try {
      parseKubeVersion(text)
      return true
    } catch {
      return false
    }
  },
  { message: 'expected a Kubernetes version such as 1.30.2' },
)

// k8s.io/apimachinery validation: object names are DNS-1123 subdomains, namespaces and Service names labels.
const dnsSubdomain = z.string().max(253).regex(DNS1123_SUBDOMAIN, 'expected a DNS-1123 subdomain (lower case, digits, - and .)')
const dnsLabel = z.string().max(63).regex(DNS1123_LABEL, 'expected a DNS-1123 label (lower case, digits and -)')

const resourceList = z.strictObject({ cpu: z.string().optional(), memory: z.string().optional() })

export const SidecarConfig = z.strictObject({
  /**
   * Image of the injected health-check container: the Dockerfile's `sidecar` target, one static
   * binary (sidecar/), tagged like nlb-guard's own image.
   */
  image: z.string().min(1).default('ghcr.io/nlb-guard/nlb-guard-healthcheck:0.1.0'),
  mode: z.enum(['tcp', 'http']).default('tcp'),
  /** Port the sidecar answers HTTP health checks on (http mode only). */
  httpPort: port.default(10254),
  intervalMs: z.number().int().min(100).max(2000).default(1000),
  resources: z
    .strictObject({ requests: resourceList.optional(), limits: resourceList.optional() })
    // From the bench (README "Performance"): 1.9 MiB resident idle and under 2,000 probes, a few
    // millicores at most. The limit leaves room for the runtime's start: runc's init runs in the
    // container's cgroup and needs several MiB more than the program (opencontainers/runc#1980,
    // moby/moby#41167: containers under ~6–10 MiB fail to start).
    .default({ requests: { cpu: '1m', memory: '4Mi' }, limits: { cpu: '20m', memory: '32Mi' } }),
  /**
   * `auto`: only pods whose own port the load balancer's health check reaches (IP targets, the
   * health-check port the traffic port; rules/injection.ts); `always`: every pod a UDP LoadBalancer
   * Service selects; `never`.
   */
  injection: z.enum(['auto', 'always', 'never']).default('auto'),
  /** Also mutate Deployment/StatefulSet/… pod templates at admission (off: GitOps tools would see drift). */
  mutateWorkloads: z.boolean().default(false),
})
/** The Pod rule owns its input type (rules/pod.ts): this fails to compile when the schema stops conforming. */
type ConformsTo<Rule, Schema extends Rule> = Schema
export type SidecarConfig = ConformsTo<SidecarSettings, z.infer<typeof SidecarConfig>>

export const Config = z.strictObject({
  port: port.default(8443),
  /** Address the webhook (TLS) server binds to. */
  address: z.string().min(1).default('0.0.0.0'),
  /**
   * Address the plain-HTTP metrics/probe server binds to. Unset: in a pod, the pod's IP (POD_IP from
   * the downward API, as the manifests set it), where the kubelet probes and Prometheus scrape, and
   * nothing else listens; elsewhere `address`. `127.0.0.1` keeps it local.
   */
  metricsAddress: z.string().min(1).optional(),
  /** Plain-HTTP port for /metrics, /healthz and /readyz (kubelet probes present no client certificate). */
  metricsPort: port.default(9090),
  tls: z
    .strictObject({
      certFile: z.string().min(1).optional(),
      keyFile: z.string().min(1).optional(),
      /** CA that client certificates must chain to; without it no client certificate is asked for. */
      clientCaFile: z.string().min(1).optional(),
    })
    .default({})
    .refine((tls) => (tls.certFile === undefined) === (tls.keyFile === undefined), {
      message: 'certFile and keyFile go together',
    }),
  /**
   * Where the serving certificate comes from (DESIGN.md §7):
   * - `files`: tls.certFile/tls.keyFile (from `certs generate` or cert-manager), reloaded when they change;
   * - `bootstrap`: a CA and certificate kept in the Secret `certSecret` of `namespace`, shared by all
   *   replicas, with the CA injected into the webhook configurations `webhookConfigurationName`;
   * - `self-signed`: a throwaway certificate for localhost made at start (local runs only);
   * - `auto`: `files` when tls.certFile is set, else `bootstrap` when given a kubeconfig or running in
   *   a pod (unless kubeVersion says to run without a cluster), else `self-signed`. A developer's
   *   ~/.kube/config alone never selects bootstrap.
   */
  certMode: z.enum(['auto', 'files', 'bootstrap', 'self-signed']).default('auto'),
  /** Bootstrap: the Secret holding ca.crt, ca.key, tls.crt, tls.key (and ca-previous.crt during a CA rollover). */
  certSecret: dnsSubdomain.default('nlb-guard-tls'),
  /** nlb-guard's own namespace: where the bootstrap Secret and the webhook Service live. */
  namespace: dnsLabel.default('nlb-guard-system'),
  /** The webhook Service: its DNS names are the serving certificate's SANs. */
  serviceName: z.string().max(63).regex(DNS1035_LABEL, 'expected a DNS-1035 label (a lower-case letter first)').default('nlb-guard'),
  /** Bootstrap: the Mutating- and ValidatingWebhookConfiguration (one name for both) whose caBundle we keep. */
  webhookConfigurationName: dnsSubdomain.default('nlb-guard'),
  clusterDomain: z.string().min(1).default('cluster.local'),
  /** Bootstrap: extra SANs for the serving certificate, when the webhook is also reached by URL. */
  certDNSNames: z.array(z.string().min(1)).default([]),
  certIPAddresses: z.array(z.ipv4().or(z.ipv6())).default([]),
  /** Bootstrap: reissue the serving certificate (valid 365 days) this many days before it expires. */
  certRotationLookaheadDays: z.number().int().min(1).max(300).default(30),
  /** Bootstrap: roll the CA (valid 10 years) over this many days before it expires. */
  caRotationLookaheadDays: z.number().int().min(1).max(3000).default(365),
  /** Bootstrap: how often the Secret is re-read and caBundle checked (drift is repaired within this). */
  certSyncSeconds: z.number().int().min(1).max(30).default(15),
  kubeconfig: z.string().min(1).optional(),
  /** Use this version instead of asking the cluster's /version (and run without a cluster). */
  kubeVersion: kubeVersion.optional(),
  versionRefreshSeconds: z.number().int().min(10).default(300),
  /**
   * Namespaces the webhook never touches, whatever the webhook configuration's namespaceSelector says.
   * Default: kube-system and nlb-guard's own `namespace` (its pods must start while it is down).
   */
  excludedNamespaces: z.array(z.string()).optional(),
  /**
   * The cluster's MixedProtocolLBService feature gate: `enabled`/`disabled` force it; `auto` asks the
   * apiserver with a dry-run (webhook/cluster/mixed-protocol.ts), else the Kubernetes default for the version.
   */
  mixedProtocolLBService: z.enum(['auto', 'enabled', 'disabled']).default('auto'),
  /** A mixed-protocol Service the cluster accepts but the AWS controller cannot build: warn or deny. */
  unbuildableMixedProtocol: z.enum(['warn', 'deny']).default('warn'),
  /**
   * `warn`: change nothing and deny nothing; every change and denial `enforce` would make is said in
   * an admission warning, counted (nlb_guard_warn_only_total) and audited, for a rollout's first weeks.
   */
  enforcement: z.enum(['enforce', 'warn']).default('enforce'),
  /** Seconds to keep serving after SIGTERM with readiness false, so endpoints drop this pod first. */
  shutdownDelaySeconds: z.number().min(0).max(60).default(5),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  sidecar: SidecarConfig.default(SidecarConfig.parse({})),
}).transform((config) => ({ ...config, excludedNamespaces: config.excludedNamespaces ?? ['kube-system', config.namespace] }))
export type Config = z.infer<typeof Config>
export type ConfigInput = z.input<typeof Config>

/** Parses raw configuration; the error names every offending key. */
export function parseConfig(raw: unknown, source = 'configuration'): Config {
  const result = Config.safeParse(raw ?? {})
  if (result.success) return result.data
  const problems = result.error.issues.map((issue) => `${issue.path.join('.') || '(top level)'}: ${issue.message}`)
  throw new ConfigError(`invalid ${source}: ${problems.join('; ')}`, { cause: result.error })
}

/** Reads the YAML file (if any) and lays the flags over it. Flags use the same keys as the file. */
export async function loadConfig(file: string | undefined, flags: ConfigInput = {}): Promise<Config> {
  let fromFile: Record<string, unknown> = {}
  if (file !== undefined) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error: unknown) {
      throw new ConfigError(`cannot read config file ${file}: ${errorMessage(error)}`, { cause: error })
    }
    let parsed: unknown
    try {
      parsed = parseYaml(text)
    } catch (error: unknown) {
      throw new ConfigError(`config file ${file} is not valid YAML: ${errorMessage(error)}`, { cause: error })
    }
    if (parsed != null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
      throw new ConfigError(`config file ${file} must hold a mapping of settings`)
    }
    fromFile = (parsed ?? {}) as Record<string, unknown>
  }
  const tls = { ...(fromFile['tls'] as object | undefined), ...flags.tls }
  return parseConfig({ ...fromFile, ...flags, tls }, file === undefined ? 'flags' : `config (${file} and flags)`)
}

/** Where the metrics server binds: metricsAddress, else the pod IP in a pod that was given one, else `address`. */
export function metricsBindAddress(config: Pick<Config, 'address' | 'metricsAddress'>, env: NodeJS.ProcessEnv = process.env): string {
  if (config.metricsAddress !== undefined) return config.metricsAddress
  const podIp = env['POD_IP']
  if (runningInCluster(env) && podIp !== undefined && podIp !== '') return podIp
  return config.address
}

/**
 * Whether this process runs in a pod: the kubelet sets these for every container, and client-node's
 * in-cluster configuration reads the same two (KubeConfig.loadFromCluster).
 */
export function runningInCluster(env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(env['KUBERNETES_SERVICE_HOST']) && Boolean(env['KUBERNETES_SERVICE_PORT'])
}
