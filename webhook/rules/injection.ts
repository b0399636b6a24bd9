import type { Service } from '../k8s/objects.js'
import { annotationsOf } from '../k8s/objects.js'
import * as A from './annotations.js'
import { loadBalancerController } from './controller.js'

/** What the injection decision reads of the sidecar's settings (the `sidecar` configuration conforms). */
export interface InjectionSettings {
  /** `auto`: where the health check reaches the pod's own port; `always`; `never` (the Pod rule stops earlier). */
  readonly injection: 'auto' | 'always' | 'never'
  readonly mode: 'tcp' | 'http'
  /** Port the sidecar answers HTTP health checks on (http mode only). */
  readonly httpPort: number
}

/**
 * Whether the load balancer's health check for a Service's targets reaches the pods' own ports,
 * the only place a sidecar in the pod can answer it (DESIGN §5). The facts, per controller:
 *
 * - AWS Load Balancer Controller: targets are instances unless `nlb-target-type: ip` (or the old
 *   type `nlb-ip`); the health-check port defaults to the traffic port, except with instance targets
 *   and `externalTrafficPolicy: Local`, where it is kube-proxy's `healthCheckNodePort` over HTTP
 *   (pkg/service/model_build_target_group.go buildTargetGroupHealthCheckConfig; docs/guide/service/
 *   annotations.md "healthcheck-port"). `healthcheck-port` takes `traffic-port`, a number, or the
 *   name of a Service port, which means its targetPort with IP targets (buildTargetGroupHealthCheckPort).
 * - EKS Auto Mode (`loadBalancerClass: eks.amazonaws.com/nlb`): "The default targeting mode is IP
 *   Mode, not Instance Mode" (docs.aws.amazon.com/eks/latest/userguide/auto-networking.html,
 *   "Considerations for load balancing with EKS Auto Mode"); the same annotations otherwise.
 * - The in-tree provider (`aws-load-balancer-type: nlb`): instance targets always.
 *
 * With instance targets the NLB probes a node port: kube-proxy answers (Local), or nothing does
 * (Cluster: a UDP NodePort has no TCP side); a sidecar in the pod is never asked.
 */
export type HealthCheckReach =
  | {
      readonly inject: true
      /** The one pod port the NLB probes, when the health-check port names a number; else every UDP target port. */
      readonly port?: number
      /** Why this pod gets a sidecar, for its warning. */
      readonly why: string
      /**
       * Set when the check reaches the pod but in a protocol the sidecar cannot answer: then no sidecar,
       * and this is the reason — once the Pod rule knows the check lands on one of the pod's UDP ports.
       */
      readonly unanswerable?: string
    }
  | { readonly inject: false; readonly why: string }

export function healthCheckReach(service: Service, sidecar: InjectionSettings): HealthCheckReach {
  if (sidecar.injection === 'always') return { inject: true, why: 'injection: always' }
  const annotations = annotationsOf(service)
  const targetType = annotations[A.AWS_NLB_TARGET_TYPE]
  const ipTargets =
    targetType === 'ip' || annotations[A.AWS_LB_TYPE] === 'nlb-ip' || (loadBalancerController(service) === 'eks-auto-mode' && targetType !== 'instance')
  if (!ipTargets) {
    return service.spec?.externalTrafficPolicy === 'Local'
      ? {
          inject: false,
          why:
            `instance targets with externalTrafficPolicy: Local: the NLB health-checks kube-proxy's health-check node port ` +
            `over HTTP, which answers for the node, so a sidecar in the pod is never asked`,
        }
      : {
          inject: false,
          why:
            `instance targets with externalTrafficPolicy: Cluster: the NLB probes the Service's UDP NodePort over TCP, ` +
            `which no sidecar in a pod can answer (the Service's warning says what works: Local, or IP targets)`,
        }
  }

  const protocol = healthCheckProtocol(annotations[A.AWS_HEALTHCHECK_PROTOCOL])
  if (protocol === undefined) {
    return {
      inject: false,
      why: `${A.AWS_HEALTHCHECK_PROTOCOL}: "${annotations[A.AWS_HEALTHCHECK_PROTOCOL]}" is none of TCP, HTTP, HTTPS: the AWS Load Balancer Controller refuses the Service`,
    }
  }
  const reach = reachOfPort(service, annotations[A.AWS_HEALTHCHECK_PORT], sidecar)
  return reach.inject ? forProtocol(reach, protocol, sidecar) : reach
}

/** Where the check lands (the pod's traffic port, one of its ports, or elsewhere) with IP targets. */
function reachOfPort(service: Service, raw: string | undefined, sidecar: InjectionSettings): HealthCheckReach {
  const http = sidecar.mode === 'http'
  if (raw === undefined || raw === 'traffic-port') {
    if (!http) return { inject: true, why: "IP targets: the NLB health-checks this pod's own UDP port over TCP" }
    return {
      inject: false,
      why:
        `the NLB health-checks the traffic port, and the sidecar (sidecar.mode: http) answers on port ${sidecar.httpPort}: ` +
        `set ${A.AWS_HEALTHCHECK_PORT}: "${sidecar.httpPort}" (and -protocol: HTTP) on the Service to use it`,
    }
  }
  const port = healthCheckPortNumber(service, raw)
  if (port === undefined) {
    return {
      inject: false,
      why: `${A.AWS_HEALTHCHECK_PORT}: "${raw}" names no Service port with a numeric targetPort, so nlb-guard cannot tell which port the NLB probes`,
    }
  }
  if (http) {
    return port === sidecar.httpPort
      ? { inject: true, why: `IP targets: the NLB health-checks port ${port} of this pod, where the sidecar answers HTTP` }
      : {
          inject: false,
          why: `the NLB health-checks port ${port} (${A.AWS_HEALTHCHECK_PORT}), not the sidecar's HTTP port ${sidecar.httpPort}: whatever listens on ${port} answers it`,
        }
  }
  return { inject: true, port, why: `IP targets: the NLB health-checks port ${port} of this pod (${A.AWS_HEALTHCHECK_PORT}) over TCP` }
}

/**
 * A sidecar where the check lands helps only if it speaks the check's protocol: the tcp-mode sidecar
 * accepts connections and says nothing, so an HTTP check of it never passes; neither mode answers
 * HTTPS; an http-mode sidecar under a TCP check is seen listening whatever its UDP ports do.
 */
function forProtocol(reach: HealthCheckReach & { inject: true }, protocol: 'TCP' | 'HTTP' | 'HTTPS', sidecar: InjectionSettings): HealthCheckReach {
  const http = sidecar.mode === 'http'
  if (protocol === 'HTTPS') {
    return {
      ...reach,
      unanswerable: `the NLB health-checks over HTTPS (${A.AWS_HEALTHCHECK_PROTOCOL}), which the sidecar cannot answer (it has no certificate): set it to ${http ? 'HTTP' : 'TCP'} on the Service`,
    }
  }
  if (protocol === 'HTTP' && !http) {
    return {
      ...reach,
      unanswerable:
        `the NLB health-checks over HTTP (${A.AWS_HEALTHCHECK_PROTOCOL}), and the sidecar (sidecar.mode: tcp) only accepts ` +
        `connections, so that check would never pass: set ${A.AWS_HEALTHCHECK_PROTOCOL}: TCP on the Service, or run the sidecar ` +
        `with sidecar.mode: http and point ${A.AWS_HEALTHCHECK_PORT} at its port ${sidecar.httpPort}`,
    }
  }
  if (protocol === 'TCP' && http) {
    return {
      ...reach,
      why: `${reach.why} (over TCP, which sees only that the sidecar listens: set ${A.AWS_HEALTHCHECK_PROTOCOL}: HTTP on the Service for the check to follow the UDP ports)`,
    }
  }
  return reach
}

/**
 * The health check's protocol as the AWS Load Balancer Controller reads it (buildTargetGroupHealthCheckProtocol:
 * upper-cased; TCP by default for IP targets), or undefined for a value it refuses.
 */
function healthCheckProtocol(raw: string | undefined): 'TCP' | 'HTTP' | 'HTTPS' | undefined {
  const value = (raw ?? 'TCP').toUpperCase()
  return value === 'TCP' || value === 'HTTP' || value === 'HTTPS' ? value : undefined
}

/** A numeric health-check port, or the targetPort of the Service port it names (as the controller resolves it for IP targets). */
function healthCheckPortNumber(service: Service, raw: string): number | undefined {
  if (/^\d{1,5}$/.test(raw)) return Number(raw)
  const named = (service.spec?.ports ?? []).find((p) => p.name === raw)
  if (named === undefined) return undefined
  if (named.targetPort === undefined) return named.port
  if (typeof named.targetPort === 'number') return named.targetPort
  return /^\d{1,5}$/.test(named.targetPort) ? Number(named.targetPort) : undefined
}
