#!/usr/bin/env bash
# The tools that validate deploy/ (issue #11), from the Go module proxy,
# cached outside the checkout; idempotent (a second run takes a second):
#   helm            helm.sh/helm/v3 at HELM_VERSION (go install)
#   berth-validate  deploy/validate: strict decoding of Kubernetes manifests
#   KServe's CRDs   the github.com/kserve/kserve module at KSERVE_VERSION
#                   (its config/crd/full holds the CRDs' openAPIV3Schema)
# Prints what the tests read: HELM=..., VALIDATE=..., KSERVE_CRDS=...
set -euo pipefail

HELM_VERSION="v3.16.4"
KSERVE_VERSION="v0.14.1"

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${BERTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
bin="$cache/bin"
mkdir -p "$bin"
command -v go >/dev/null || { echo "go is not installed (the Go toolchain builds helm and berth-validate)" >&2; exit 1; }

helm="$bin/helm"
if [[ ! -x $helm || "$(cat "$bin/.helm-version" 2>/dev/null)" != "$HELM_VERSION" ]]; then
  echo "[deploy_tools] go install helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  (cd "$cache" && GOBIN="$bin" GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION")
  echo "$HELM_VERSION" >"$bin/.helm-version"
fi

# go build is a no-op when neither the sources nor the module set changed.
(cd "$root/deploy/validate" && go build -o "$bin/berth-validate" .)

kserve="$(cd "$root/deploy/validate" && go mod download -json "github.com/kserve/kserve@$KSERVE_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
[[ -d $kserve/config/crd/full ]] || { echo "no config/crd/full in github.com/kserve/kserve@$KSERVE_VERSION" >&2; exit 1; }

echo "HELM=$helm"
echo "VALIDATE=$bin/berth-validate"
echo "KSERVE_CRDS=$kserve/config/crd/full"
