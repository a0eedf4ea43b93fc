#!/usr/bin/env bash
# `make image`: Berth's runtime image (deploy/Dockerfile's last stage) built
# without a Docker engine or an image registry.
#   1. mmdebstrap makes a Debian 12 root file system of runtime-packages.txt
#      (minbase: no compiler), from the mirror this machine's apt uses;
#   2. a customize hook adds the berth user (uid/gid 10001), /models, and
#      BINARY (stripped, without its build tree's RUNPATH) with ONNX Runtime
#      under /opt/berth, found through /etc/ld.so.conf.d/berth.conf;
#   3. buildah builds Containerfile (FROM scratch, ADD rootfs.tar, then the
#      same configuration as deploy/Dockerfile) in Docker format, so that
#      HEALTHCHECK and STOPSIGNAL are kept.
#
#   deploy/image/build.sh [BINARY]   (default build/berth; TAG=berth:<version>)
#
# Writes OUT (default build-image/) rootfs/ (the tree, for checks), rootfs.tar,
# image.tar (docker-archive) and size (the image's bytes). Needs root (mmdebstrap's
# root mode and buildah's storage); installs mmdebstrap, buildah, podman and
# patchelf from Debian when they are missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
binary="$(realpath "${1:-$root/build/berth}")"
out="${OUT:-$root/build-image}"
here="$root/deploy/image"
log() { echo "[image] $*"; }

[[ -x $binary ]] || { echo "no berth binary at $binary: build it first (cmake --build build)" >&2; exit 1; }
ort="$(ldd "$binary" | awk '/libonnxruntime/ {print $3}')"
[[ -f $ort ]] || { echo "$binary does not link a libonnxruntime.so that ldd can find" >&2; exit 1; }
version="$("$binary" --version | awk '{print $2}')"
tag="${TAG:-berth:$version}"

tools=(mmdebstrap buildah podman patchelf)
missing=()
for p in "${tools[@]}"; do command -v "$p" >/dev/null || missing+=("$p"); done
if (( ${#missing[@]} )); then
  log "installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" uidmap
fi

# The Debian mirror of this machine's apt sources (as install_onnxruntime.sh).
mirror=""
for f in /etc/apt/sources.list.d/*.sources; do
  [[ -f $f ]] || continue
  mirror="$(awk '/^URIs:/{print $2}' "$f" | grep -v -- '-security' | head -1 || true)"
  [[ -n $mirror ]] && break
done
if [[ -z $mirror && -f /etc/apt/sources.list ]]; then
  mirror="$(awk '$1=="deb" && $0 !~ /security/ {for(i=2;i<=NF;i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

rm -rf "$out"
mkdir -p "$out/payload/opt/berth/bin" "$out/payload/opt/berth/lib"
strip -o "$out/payload/opt/berth/bin/berth" "$binary"
# The build tree's RUNPATH points into this checkout. (patchelf's
# --set-rpath on a stripped binary left a RUNPATH ld.so ignored: the loader's
# configuration names the directory instead.)
patchelf --remove-rpath "$out/payload/opt/berth/bin/berth"
mkdir -p "$out/payload/etc/ld.so.conf.d"
echo /opt/berth/lib >"$out/payload/etc/ld.so.conf.d/berth.conf"
cp -L "$ort" "$out/payload/opt/berth/lib/$(basename "$ort")"

packages="$(grep -v '^#' "$here/runtime-packages.txt" | grep . | paste -sd,)"
log "mmdebstrap bookworm ($packages) from $mirror"
# Documentation, man pages and locales are left out, as debian:12-slim does.
mmdebstrap --variant=minbase --mode=root --include="$packages" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook="cp -a '$out/payload/.' \"\$1/\"" \
  --customize-hook='chroot "$1" ldconfig' \
  --customize-hook='chroot "$1" groupadd --system --gid 10001 berth' \
  --customize-hook='chroot "$1" useradd --system --uid 10001 --gid berth --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin berth' \
  --customize-hook='mkdir -p "$1/models" && chown 10001:10001 "$1/models"' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm "$out/rootfs.tar" "$mirror" >"$out/mmdebstrap.log" 2>&1 \
  || { tail -n 30 "$out/mmdebstrap.log" >&2; exit 1; }
mkdir -p "$out/rootfs"
tar -C "$out/rootfs" -xf "$out/rootfs.tar"

log "buildah bud -> $tag"
cp "$here/Containerfile" "$out/Containerfile"
buildah bud --quiet --format docker --layers=false -f "$out/Containerfile" -t "$tag" "$out" >"$out/buildah.log" 2>&1 \
  || { cat "$out/buildah.log" >&2; exit 1; }
buildah push --quiet "$tag" "docker-archive:$out/image.tar:$tag" >>"$out/buildah.log" 2>&1
size="$(buildah inspect --type image --format '{{.ImageSize}}' "$tag" 2>/dev/null || true)"
[[ -n $size && $size != 0 ]] || size="$(stat -c %s "$out/image.tar")"
echo "$size" >"$out/size"
echo "$tag" >"$out/tag"
log "built $tag: $(numfmt --to=iec "$size")B ($size bytes; docker-archive $(du -h "$out/image.tar" | cut -f1))"
