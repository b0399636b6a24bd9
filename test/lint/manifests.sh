#!/usr/bin/env bash
# Lints the manifests as users apply them: renders every overlay with `kubectl kustomize` and scores
# the result with kube-score (github.com/zegl/kube-score), warnings included. Exit 0 means no
# finding; a finding that stays on purpose is named in a `kube-score/ignore` annotation on its
# object, with the reason in a comment beside it.
#
# kube-score is built from the Go module proxy on first use and cached outside the repo:
#   NLB_GUARD_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard); binary in bin/
#   KUBE_SCORE        use this kube-score binary, build nothing
# kube-linter, the other candidate, is not served by the Go module proxy under any module path.
set -euo pipefail

# Only v1.20.0 is listed by the proxy; pinned so a new release cannot turn the lint red by itself.
kube_score_version=v1.20.0
# The oldest Kubernetes the manifests target (matchConditions are GA from 1.30): kube-score flags
# API versions deprecated by then.
kubernetes_version=v1.30

log() { printf '[lint-manifests] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH (its built-in kustomize renders the overlays)"

kube_score="${KUBE_SCORE:-}"
if [[ -z "$kube_score" ]]; then
  bin_dir="${NLB_GUARD_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/nlb-guard}/bin"
  kube_score="$bin_dir/kube-score-$kube_score_version"
  if [[ ! -x "$kube_score" ]]; then
    command -v go >/dev/null 2>&1 || die "go is not on PATH: it builds kube-score $kube_score_version"
    log "building kube-score $kube_score_version into $bin_dir (once; a few minutes on 2 cores)"
    mkdir -p "$bin_dir"
    staging="$(mktemp -d "$bin_dir/.build.XXXXXX")"
    trap 'rm -rf "$staging"' EXIT
    # GOFLAGS from the environment (say -mod=mod) would not apply to `go install module@version`.
    GOBIN="$staging" GOFLAGS='' GOTOOLCHAIN=local \
      go install "github.com/zegl/kube-score/cmd/kube-score@$kube_score_version" >&2
    # A rename is atomic: a concurrent run sees the whole binary or none.
    mv -f "$staging/kube-score" "$kube_score"
  fi
fi
[[ -x "$kube_score" ]] || die "$kube_score is not executable"

rendered="$(mktemp -d)"
trap 'rm -rf "$rendered" "${staging:-}"' EXIT

status=0
for kustomization in "$root"/manifests/overlays/*/kustomization.yaml "$root"/manifests/overlays/*/*/kustomization.yaml; do
  [[ -f "$kustomization" ]] || continue
  overlay="$(dirname "$kustomization")"
  name="${overlay#"$root"/manifests/overlays/}"
  file="${name//\//-}"
  # overlays/legacy/1.16-1.20 targets 1.16 and up: score it against the oldest it serves.
  version="$kubernetes_version"
  if [[ "$name" =~ ^legacy/([0-9]+\.[0-9]+)- ]]; then version="v${BASH_REMATCH[1]}"; fi
  kubectl kustomize "$overlay" >"$rendered/$file.yaml" || die "kubectl kustomize $overlay failed"
  log "kube-score $name (Kubernetes $version)"
  # Optional checks worth having here: a seccomp profile, and named, unique container ports.
  code=0
  "$kube_score" score "$rendered/$file.yaml" \
    --kubernetes-version "$version" \
    --enable-optional-test container-seccomp-profile \
    --enable-optional-test container-ports-check \
    --exit-one-on-warning \
    --output-format ci \
    --color never \
    >"$rendered/$file.out" || code=$?
  # Passed and skipped checks are noise; show the rest.
  grep -Ev '^\[(OK|SKIPPED)\]' "$rendered/$file.out" >&2 || true
  # kube-score exits 1 on any warning or critical finding (and on a file it cannot read).
  if (( code != 0 )); then
    log "overlay $name: kube-score exited $code; findings above"
    status=1
  fi
done
(( status == 0 )) && log "no findings"
exit "$status"
