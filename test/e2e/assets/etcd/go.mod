// Builds etcd for the e2e suite (see ../build.sh). Kept apart from the
// kube-apiserver module so neither bumps the other's shared dependencies.
// The version required here is the one build.sh builds (envtest pairing:
// k8s 1.37 <-> etcd 3.7.x).
module nlb-guard.local/e2e/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 v3.7.3

tool go.etcd.io/etcd/server/v3
