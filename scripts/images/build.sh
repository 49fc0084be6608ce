#!/usr/bin/env bash
# Build the producer and consumer images here with buildah (no Docker engine, no registry):
#   scripts/images/build.sh [producer] [consumer]      (default: both)
# 1. the local base images (scripts/images/build-base.sh: debootstrap, cached);
# 2. buildah bud --isolation chroot --layers for each Dockerfile.<service>, the CA bundle as a build secret.
# Tags: localhost/homesec-<service>:latest and :<version>.
# Env: CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt), PIP_BUILD_CONFIG (optional pip.conf for the
#      build, passed as secret "pipconf", e.g. to use an index mirror), IMAGE_PREFIX (default localhost/homesec-),
#      BASE_IMAGE / BUILD_IMAGE (default: the local debootstrap bases). Needs root. Serialised with a lock.
set -euo pipefail
cd "$(dirname "$0")/../.."

CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
IMAGE_PREFIX=${IMAGE_PREFIX:-localhost/homesec-}
export BASE_IMAGE=${BASE_IMAGE:-localhost/homesec-base:bookworm}
export BUILD_IMAGE=${BUILD_IMAGE:-localhost/homesec-base:bookworm-build}
services=("$@")
[ ${#services[@]} -gt 0 ] || services=(producer consumer)

log() { printf 'images: %s\n' "$*" >&2; }

# One build at a time on this machine (tests and make may run concurrently; buildah storage is shared).
exec 9>/tmp/homesec-images.lock
flock 9

case "$BASE_IMAGE" in localhost/homesec-base:*) bash scripts/images/build-base.sh ;; esac

version=$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain -- services requirements/runtime.txt Dockerfile.* 2>/dev/null)" ] \
  || revision="$revision-dirty"
created=$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)
# The clone's origin as a web URL, never a local path (empty: the Dockerfiles' default, the project's repository).
source_url=$(bash scripts/images/source-url.sh)
source_args=()
if [ -n "$source_url" ]; then source_args=(--build-arg SOURCE_URL="$source_url"); fi
# The base by digest (its labels carry the Debian archive date and the package list's hash).
base_digest=$(buildah inspect --type image --format '{{.FromImageDigest}}' "$BASE_IMAGE" 2>/dev/null || true)

secrets=()
if [ -s "$CA_BUNDLE" ]; then secrets+=(--secret "id=ca,src=$CA_BUNDLE"); else log "no CA bundle at $CA_BUNDLE"; fi
if [ -n "${PIP_BUILD_CONFIG:-}" ]; then secrets+=(--secret "id=pipconf,src=$PIP_BUILD_CONFIG"); fi

for svc in "${services[@]}"; do
  [ -f "Dockerfile.$svc" ] || { log "no Dockerfile.$svc"; exit 2; }
  start=$(date +%s)
  buildah bud --isolation chroot --layers --pull=never --quiet \
    "${secrets[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg BUILD_IMAGE="$BUILD_IMAGE" \
    --build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg CREATED="$created" \
    "${source_args[@]}" --build-arg BASE_DIGEST="$base_digest" \
    -f "Dockerfile.$svc" -t "${IMAGE_PREFIX}$svc:latest" -t "${IMAGE_PREFIX}$svc:$version" . >/dev/null
  log "built ${IMAGE_PREFIX}$svc:latest in $(($(date +%s) - start)) s"
done
