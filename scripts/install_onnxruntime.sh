#!/usr/bin/env bash
# Installs ONNX Runtime (headers + shared library) into a project-local prefix.
#
#   scripts/install_onnxruntime.sh [PREFIX]        (default: .deps/onnxruntime)
#
# Where apt offers libonnxruntime-dev (Debian 13 and later), that package is
# used and PREFIX only holds symlinks to it. On Debian 12, which does not
# package ONNX Runtime:
#   - the shared library comes from the npm package onnxruntime-node, which
#     ships libonnxruntime.so.1 for linux/x64;
#   - the C/C++ headers come from Debian 13's libonnxruntime-dev, downloaded
#     with apt from the mirror this machine's apt sources already use.
# The C API is forward compatible: headers of API version N work with a newer
# library. Downloads are cached outside the checkout; re-runs are no-ops.
set -euo pipefail

ORT_NPM_VERSION="1.30.0"
ORT_HEADERS_SUITE="trixie"

root="$(cd "$(dirname "$0")/.." && pwd)"
prefix="${1:-$root/.deps/onnxruntime}"
cache="${BERTH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/berth}"
stamp="$prefix/.installed"

if [[ -f "$stamp" && -f "$prefix/include/onnxruntime_cxx_api.h" && -e "$prefix/lib/libonnxruntime.so" ]]; then
  exit 0
fi
mkdir -p "$prefix/include" "$prefix/lib" "$cache"

log() { echo "[install_onnxruntime] $*"; }

# 1. A distribution that packages ONNX Runtime: use it.
if apt-cache policy libonnxruntime-dev 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  log "using the distribution's libonnxruntime-dev"
  if ! dpkg-query -W -f='${Status}' libonnxruntime-dev 2>/dev/null | grep -q 'ok installed'; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libonnxruntime-dev
  fi
  hdr="$(dirname "$(dpkg -L libonnxruntime-dev | grep '/onnxruntime_cxx_api.h$' | head -1)")"
  lib="$(dpkg -L libonnxruntime-dev | grep '/libonnxruntime\.so$' | head -1)"
  ln -sfn "$hdr"/* "$prefix/include/"
  ln -sfn "$lib" "$prefix/lib/libonnxruntime.so"
  echo "system" > "$stamp"
  exit 0
fi

# 2. The shared library from the npm registry.
tgz="$cache/onnxruntime-node-$ORT_NPM_VERSION.tgz"
if [[ ! -f "$tgz" ]]; then
  log "fetching onnxruntime-node@$ORT_NPM_VERSION from npm"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "onnxruntime-node@$ORT_NPM_VERSION" >/dev/null)
  mv "$tmp"/onnxruntime-node-*.tgz "$tgz"
  rm -rf "$tmp"
fi
tar -xzf "$tgz" -C "$prefix/lib" --strip-components=5 \
  package/bin/napi-v6/linux/x64/libonnxruntime.so.1
ln -sfn libonnxruntime.so.1 "$prefix/lib/libonnxruntime.so"

# 3. The headers from Debian 13, through apt with a private state directory,
#    so the machine's own apt configuration is left untouched.
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -f "$f" ]] || continue
  mirror="$(awk '/^URIs:/{print $2}' "$f" | grep -v -- '-security' | head -1 || true)"
  [[ -n "$mirror" ]] && break
done
if [[ -z "$mirror" && -f /etc/apt/sources.list ]]; then
  mirror="$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)"
fi
[[ -n "$mirror" ]] || { echo "no Debian mirror found in the apt sources" >&2; exit 1; }

debs="$cache/apt-$ORT_HEADERS_SUITE"
mkdir -p "$debs/lists/partial" "$debs/archives/partial"
echo "deb $mirror $ORT_HEADERS_SUITE main" > "$debs/sources.list"
: > "$debs/status"
apt_private=(-o "Dir::Etc::SourceList=$debs/sources.list" -o Dir::Etc::SourceParts=/dev/null
             -o "Dir::State::Lists=$debs/lists" -o "Dir::State::Status=$debs/status"
             -o "Dir::Cache=$debs" -o "Dir::Cache::archives=$debs/archives"
             -o APT::Sandbox::User=root)
deb="$(ls "$debs"/libonnxruntime-dev_*.deb 2>/dev/null | head -1 || true)"
if [[ -z "$deb" ]]; then
  log "fetching libonnxruntime-dev headers from $ORT_HEADERS_SUITE via $mirror"
  apt-get -q "${apt_private[@]}" update >/dev/null
  (cd "$debs" && apt-get -q "${apt_private[@]}" download libonnxruntime-dev >/dev/null)
  deb="$(ls "$debs"/libonnxruntime-dev_*.deb | head -1)"
fi
tmp="$(mktemp -d)"
dpkg-deb -x "$deb" "$tmp"
cp -r "$tmp"/usr/include/onnxruntime/. "$prefix/include/"
rm -rf "$tmp"

echo "npm onnxruntime-node $ORT_NPM_VERSION + headers $(basename "$deb")" > "$stamp"
log "installed into $prefix"
