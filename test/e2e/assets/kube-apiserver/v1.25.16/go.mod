// Builds upstream's kube-apiserver v1.25.16 for the e2e suite (see ../../build.sh).
// build.sh adds the replace lines for the staging modules (v0.25.16), except
// for a module already replaced here.
module nlb-guard.local/e2e/kube-apiserver

go 1.26.0

require k8s.io/kubernetes v1.25.16

// The module proxy refuses k8s.io/cluster-bootstrap@v0.25.16 (403, "not
// available"); v0.25.8 is the newest patch it serves, and the apiserver only
// uses its token helpers, unchanged across those patches.
replace k8s.io/cluster-bootstrap => k8s.io/cluster-bootstrap v0.25.8

// kubectl of the same release: its kustomize and its client-side validation
// are what users of that version run (test/e2e/legacy-*.test.ts).
tool (
	k8s.io/kubernetes/cmd/kube-apiserver
	k8s.io/kubernetes/cmd/kubectl
)
