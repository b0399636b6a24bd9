/**
 * Kubernetes name patterns (k8s.io/apimachinery/pkg/util/validation): object names are DNS-1123
 * subdomains, namespaces DNS-1123 labels, Service names DNS-1035 labels (a letter first).
 */

/** One DNS-1123 label: at most 63 lower-case letters, digits and `-`, alphanumeric at both ends. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/

/** A DNS-1035 label: a DNS-1123 label that starts with a letter. */
export const DNS1035_LABEL = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/

/** A DNS-1123 subdomain: labels joined by dots, at most 253 characters (checked apart). */
export const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
