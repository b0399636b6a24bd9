{{/* The chart's name, or nameOverride. */}}
{{- define "nlb-guard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of every object: the release name when it already says nlb-guard (`helm install
nlb-guard ...` gives objects named nlb-guard, as the rendered manifests are), else
<release>-nlb-guard.
*/}}
{{- define "nlb-guard.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "nlb-guard.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The pods' selector: unchanged from the first kustomize release, since a Deployment's selector cannot change. */}}
{{- define "nlb-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nlb-guard.name" . }}
app.kubernetes.io/component: webhook
{{- end -}}

{{- define "nlb-guard.labels" -}}
app.kubernetes.io/name: {{ include "nlb-guard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: nlb-guard
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
The cluster's version with any vendor suffix (v1.28.3-eks-4f4795d) kept as a pre-release, so
"-0" constraints match it.
*/}}
{{- define "nlb-guard.kubeVersion" -}}
{{- .Capabilities.KubeVersion.Version -}}
{{- end -}}

{{/*
The shape of the objects by Kubernetes version, one place for every cut:
- matchConditions (CEL) on webhooks: beta and on by default from 1.28 (GA 1.30); refused before.
- topologySpreadConstraints matchLabelKeys / nodeTaintsPolicy and the PDB's
  unhealthyPodEvictionPolicy: rendered from 1.28 (1.25-1.27 refuse or silently drop them).
- policy/v1 PodDisruptionBudget: served from 1.21.
- the kubernetes.io/metadata.name namespace label: set by the apiserver from 1.21.
- seccompProfile fields: 1.19 (an annotation before). topologySpreadConstraints: GA 1.19.
- startupProbe: on by default from 1.18. system-*-critical outside kube-system: 1.17 (before:
  nlb-guard.priorityClassName).
*/}}
{{- define "nlb-guard.modern" -}}
{{- if semverCompare ">=1.28-0" (include "nlb-guard.kubeVersion" .) }}true{{ end -}}
{{- end -}}
{{- define "nlb-guard.atLeast" -}}
{{- $ctx := index . 0 -}}
{{- if semverCompare (printf ">=%s-0" (index . 1)) (include "nlb-guard.kubeVersion" $ctx) }}true{{ end -}}
{{- end -}}

{{/*
The pods' priorityClassName. Kubernetes 1.16 admits the system-*-critical classes in kube-system
only (1.17 lifted that): there, in any other namespace, the chart renders a PriorityClass of its own,
<fullname>-critical (templates/priorityclass.yaml), and the pods use it. One answer for every 1.16
install, `helm install` and the legacy/1.16-1.20 overlay alike (DESIGN.md "Helm chart").
*/}}
{{- define "nlb-guard.ownPriorityClass" -}}
{{- if and (hasPrefix "system-" .Values.priorityClassName) (ne .Release.Namespace "kube-system") (not (include "nlb-guard.atLeast" (list . "1.17"))) }}true{{ end -}}
{{- end -}}
{{- define "nlb-guard.priorityClassName" -}}
{{- if include "nlb-guard.ownPriorityClass" . -}}
{{- printf "%s-critical" (include "nlb-guard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- .Values.priorityClassName -}}
{{- end -}}
{{- end -}}

{{- define "nlb-guard.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "nlb-guard.sidecarImage" -}}
{{- $repository := default .Values.image.repository .Values.sidecar.image.repository -}}
{{- $tag := default (default .Chart.AppVersion .Values.image.tag) .Values.sidecar.image.tag -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}

{{/* The Secret holding the serving certificate (bootstrap: also the CA). */}}
{{- define "nlb-guard.tlsSecret" -}}
{{- if eq .Values.certificates.mode "bootstrap" -}}
{{- printf "%s-tls" (include "nlb-guard.fullname" .) -}}
{{- else if eq .Values.certificates.mode "cert-manager" -}}
{{- printf "%s-serving-tls" (include "nlb-guard.fullname" .) -}}
{{- else -}}
{{- required "certificates.files.secretName is required with certificates.mode=files" .Values.certificates.files.secretName -}}
{{- end -}}
{{- end -}}

{{/*
config.yaml as nlb-guard reads it: config.* with the keys the chart owns laid over.
*/}}
{{- define "nlb-guard.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $tls := deepCopy (default dict $config.tls) -}}
{{- if eq .Values.certificates.mode "bootstrap" -}}
{{- $_ := set $config "certMode" "bootstrap" -}}
{{- else -}}
{{- $_ := set $config "certMode" "files" -}}
{{- $_ := set $tls "certFile" "/tls/tls.crt" -}}
{{- $_ := set $tls "keyFile" "/tls/tls.key" -}}
{{- end -}}
{{- $_ := set $config "tls" $tls -}}
{{- $_ := set $config "certSecret" (printf "%s-tls" (include "nlb-guard.fullname" .)) -}}
{{- $_ := set $config "namespace" .Release.Namespace -}}
{{- $_ := set $config "serviceName" (include "nlb-guard.fullname" .) -}}
{{- $_ := set $config "webhookConfigurationName" (include "nlb-guard.fullname" .) -}}
{{- $excluded := default list $config.excludedNamespaces -}}
{{- if not (has .Release.Namespace $excluded) -}}
{{- $excluded = append $excluded .Release.Namespace -}}
{{- end -}}
{{- $_ := set $config "excludedNamespaces" $excluded -}}
{{- $sidecar := deepCopy (default dict $config.sidecar) -}}
{{- $_ := set $sidecar "image" (include "nlb-guard.sidecarImage" .) -}}
{{- $_ := set $config "sidecar" $sidecar -}}
{{- toYaml $config -}}
{{- end -}}

{{/* webhook.timeoutSeconds: one number for all, or per webhook (services, pods, validation). */}}
{{- define "nlb-guard.timeout" -}}
{{- $ctx := index . 0 -}}
{{- $t := $ctx.Values.webhook.timeoutSeconds -}}
{{- if kindIs "map" $t -}}
{{- index $t (index . 1) | int -}}
{{- else -}}
{{- $t | int -}}
{{- end -}}
{{- end -}}

{{/*
The namespaces no webhook is called for: kube-system (the cluster's own controllers must never wait
on nlb-guard), the release namespace (a broken nlb-guard must be able to roll out a fixed one) and
any namespace labelled nlb-guard.io/ignore=true. NotIn also matches namespaces without the label.
Before 1.21 the apiserver sets no kubernetes.io/metadata.name label, so exclusion by name would
exclude nothing: there the label is the only way (the chart's namespace carries it, kube-system
needs `kubectl label namespace kube-system nlb-guard.io/ignore=true`), and config.excludedNamespaces
repeats both names inside nlb-guard.
*/}}
{{- define "nlb-guard.namespaceSelector" -}}
matchExpressions:
{{- if include "nlb-guard.atLeast" (list . "1.21") }}
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values: [kube-system, {{ .Release.Namespace }}]
{{- end }}
  - key: nlb-guard.io/ignore
    operator: NotIn
    values: ["true"]
{{- with .Values.webhook.namespaceSelector.matchExpressions }}
{{ toYaml . | indent 2 }}
{{- end }}
{{- end -}}

{{/*
An objectSelector sees labels only, not spec.type; matchConditions narrow the calls to the Services
the rules look at, so a nlb-guard outage never blocks a ClusterIP Service. nlb-guard checks both
again itself. Before 1.28 every Service write outside the excluded namespaces is sent.
*/}}
{{- define "nlb-guard.serviceMatchConditions" -}}
{{- if include "nlb-guard.modern" . }}
matchConditions:
  - name: load-balancer
    expression: has(object.spec.type) && object.spec.type == 'LoadBalancer'
  - name: not-ignored
    expression: >-
      !has(object.metadata.annotations) ||
      !('nlb-guard.io/ignore' in object.metadata.annotations) ||
      object.metadata.annotations['nlb-guard.io/ignore'] != 'true'
{{- end }}
{{- end -}}

{{- define "nlb-guard.clientConfig" -}}
{{- $ctx := index . 0 -}}
clientConfig:
  service:
    name: {{ include "nlb-guard.fullname" $ctx }}
    namespace: {{ $ctx.Release.Namespace }}
    path: {{ index . 1 }}
    port: 443
{{- if eq $ctx.Values.certificates.mode "files" }}
  caBundle: {{ required "certificates.files.caBundle (base64 PEM) is required with certificates.mode=files" $ctx.Values.certificates.files.caBundle }}
{{- end }}
{{- end -}}
