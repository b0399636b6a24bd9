// Builds upstream's kube-apiserver v1.19.16 for the e2e suite (see ../../build.sh).
// build.sh adds the replace lines for the staging modules (v0.19.16), and
// generates pkg/generated/openapi, which 1.19 makes with `make` instead of
// shipping it in the module.
module nlb-guard.local/e2e/kube-apiserver

go 1.26.0

require k8s.io/kubernetes v1.19.16

// reflect2 v1.0.1 (1.19's pin) breaks on Go >= 1.18: the apiserver dies with
// "concurrent map iteration and map write" at the first webhook patch.
require (
	github.com/json-iterator/go v1.1.12
	github.com/modern-go/reflect2 v1.0.2
)

// Required through kubectl v0.19.16; the module proxy refuses vbom.ml, and
// this is the same code at its new home.
replace vbom.ml/util => github.com/fvbommel/util v0.0.0-20160121211510-db5cfe13f5cc

// kubectl of the same release: its kustomize and its client-side validation
// are what users of that version run (test/e2e/legacy-*.test.ts).
tool (
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kubectl
)
