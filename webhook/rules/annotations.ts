/** Annotation keys the rules read and write, in one place. */

const aws = 'service.beta.kubernetes.io/'

export const AWS_LB_TYPE = `${aws}aws-load-balancer-type`
export const AWS_CROSS_ZONE = `${aws}aws-load-balancer-cross-zone-load-balancing-enabled`
export const AWS_LB_ATTRIBUTES = `${aws}aws-load-balancer-attributes`
export const AWS_NLB_TARGET_TYPE = `${aws}aws-load-balancer-nlb-target-type`
export const AWS_HEALTHCHECK_PORT = `${aws}aws-load-balancer-healthcheck-port`
export const AWS_HEALTHCHECK_PROTOCOL = `${aws}aws-load-balancer-healthcheck-protocol`
export const AWS_TCP_UDP_LISTENER = `${aws}aws-load-balancer-enable-tcp-udp-listener`

/** The attribute in AWS_LB_ATTRIBUTES that the AWS Load Balancer Controller and EKS Auto Mode read. */
export const CROSS_ZONE_ATTRIBUTE = 'load_balancing.cross_zone.enabled'

const own = 'nlb-guard.io/'

export const IGNORE = `${own}ignore`
/** A namespace label: `warn` makes nlb-guard warn-only there while the global setting is enforce. */
export const WARN_NAMESPACE_LABEL = `${own}enforcement`
export const WARN_NAMESPACE_VALUE = 'warn'
export const ALLOW_LB_TYPE_CHANGE = `${own}allow-lb-type-change`
export const ALLOW_SINGLE_ZONE = `${own}allow-single-zone`
export const INJECT = `${own}inject`
export const HEALTHCHECK_PORTS = `${own}healthcheck-ports`

/** Load balancer classes whose controllers nlb-guard knows (S3); any other class is left alone. */
export const LBC_CLASS = 'service.k8s.aws/nlb'
export const EKS_AUTO_CLASS = 'eks.amazonaws.com/nlb'

/** Values of AWS_LB_TYPE that already give a Network Load Balancer. */
export const NLB_TYPES: ReadonlySet<string> = new Set(['nlb', 'external', 'nlb-ip'])
/** Values of AWS_LB_TYPE handled by the AWS Load Balancer Controller rather than the in-tree provider. */
export const LBC_TYPES: ReadonlySet<string> = new Set(['external', 'nlb-ip'])
