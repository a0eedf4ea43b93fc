#!/usr/bin/env bash
# One idempotent set-up for `make run` and `make test` on Debian 12:
#   1. Debian packages (compiler, Boost.Beast, gRPC, protobuf, RapidJSON, ...)
#   2. ONNX Runtime into .deps/onnxruntime (scripts/install_onnxruntime.sh)
#   3. the Python tooling in .venv (python/requirements.txt, pinned)
#   4. the example models in examples/models (examples/train_models.py)
# Each step is skipped when already done, so a second run takes a second.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
log() { echo "[setup] $*"; }

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache git
  libboost-dev libboost-system-dev rapidjson-dev libyaml-cpp-dev zlib1g-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libsqlite3-dev
  postgresql libpq-dev nginx prometheus
  python3 python3-venv python3-dev wrk curl openssl
  openjdk-17-jre-headless  # pyspark (berth.spark and its test)
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if (( ${#missing[@]} )); then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=(); [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -q
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

"$root/scripts/install_onnxruntime.sh"

req_hash="$(sha256sum python/requirements.txt | cut -c1-16)"
if [[ "$(cat .venv/.requirements 2>/dev/null)" != "$req_hash" ]]; then
  log "creating .venv from python/requirements.txt"
  [[ -x .venv/bin/python ]] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r python/requirements.txt
  echo "$req_hash" > .venv/.requirements
fi

# The berth package itself (python/), editable so the checkout is what runs.
if ! .venv/bin/python -c 'import berth' 2>/dev/null; then
  log "installing the berth package (python/)"
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e ./python
fi

models_hash="$( (cat examples/train_models.py python/requirements.txt) | sha256sum | cut -c1-16)"
if [[ "$(cat examples/models/.trained 2>/dev/null)" != "$models_hash" ]]; then
  log "training and converting the example models"
  .venv/bin/python examples/train_models.py --out examples/models
  echo "$models_hash" > examples/models/.trained
fi
