// Builds upstream's kube-apiserver for the e2e suite (see ../../build.sh).
// The k8s.io/kubernetes version required here is the one build.sh builds.
// The replace block for its staging modules is derived by build.sh from
// the module proxy's .mod file, so it is not kept here.
module nlb-guard.local/e2e/kube-apiserver

go 1.26.0

require k8s.io/kubernetes v1.37.2

tool k8s.io/kubernetes/cmd/kube-apiserver
