#!/usr/bin/env bash
# Build the local "python slim"-like base images with debootstrap and import them into buildah storage.
#
#   localhost/homesec-base:bookworm        runtime base: Debian bookworm minbase + python3 (3.11) + ca-certificates
#   localhost/homesec-base:bookworm-build  build base: the same rootfs + python3-venv (pip/setuptools wheels)
#
# Both come from ONE debootstrap run (the build rootfs); the runtime rootfs is a copy with the venv packages
# purged, so the two share exactly the same interpreter and libraries (a venv made in the build stage runs
# unchanged in the final stage). Idempotent and cached on two levels:
#   1. buildah storage: images whose label io.homesec.base.recipe equals this recipe's hash are kept as they are;
#   2. .cache/images/base-<hash>-{runtime,build}.tar: rootfs tarballs, re-imported without debootstrap.
# What the base is made of is recorded in its labels (and so in every image built on it): the Date of the
# Debian archive's Release file debootstrap used (io.homesec.base.debian-archive-date, the timestamp to give
# snapshot.debian.org to fetch the same versions again), the sha256 of the sorted "package=version" list
# (io.homesec.base.packages-sha256; the list is .cache/images/base-<hash>-<kind>.packages and the image's
# own dpkg status) and Debian's point release (io.homesec.base.debian-version). See docs/images.md.
# Env: DEBIAN_MIRROR (default http://deb.debian.org/debian), IMAGES_CACHE (default .cache/images),
#      BASE_IMAGE / BUILD_IMAGE (the tags), FORCE=1 to rebuild from scratch. Needs root.
set -euo pipefail
SELF=$(readlink -f "$0")
cd "$(dirname "$SELF")/../.."

SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CACHE=${IMAGES_CACHE:-.cache/images}
BASE_IMAGE=${BASE_IMAGE:-localhost/homesec-base:bookworm}
BUILD_IMAGE=${BUILD_IMAGE:-localhost/homesec-base:bookworm-build}
RUNTIME_PKGS=python3,ca-certificates
BUILD_ONLY_PKGS=(python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl)

log() { printf 'base-image: %s\n' "$*" >&2; }

[ "$(id -u)" -eq 0 ] || { log "needs root (debootstrap, buildah mount)"; exit 1; }
for tool in debootstrap buildah; do
  command -v "$tool" >/dev/null || { log "$tool is missing: run 'make setup-system'"; exit 1; }
done

# The recipe hash: this script's content and its parameters (not the mirror: same suite, same packages).
RECIPE=$( { cat "$SELF"; echo "$SUITE $RUNTIME_PKGS ${BUILD_ONLY_PKGS[*]}"; } | sha256sum | cut -c1-16)

image_recipe() {  # prints the recipe label of an image in buildah storage, or nothing
  buildah inspect --type image --format '{{index .OCIv1.Config.Labels "io.homesec.base.recipe"}}' "$1" 2>/dev/null \
    || true
}

if [ "${FORCE:-0}" != 1 ] && [ "$(image_recipe "$BASE_IMAGE")" = "$RECIPE" ] \
   && [ "$(image_recipe "$BUILD_IMAGE")" = "$RECIPE" ]; then
  log "cached in buildah storage: $BASE_IMAGE, $BUILD_IMAGE (recipe $RECIPE)"
  exit 0
fi

mkdir -p "$CACHE"
RUNTIME_TAR=$CACHE/base-$RECIPE-runtime.tar
BUILD_TAR=$CACHE/base-$RECIPE-build.tar

slim_rootfs() {  # what python:slim-style images leave out: docs (but copyrights), man pages, locales, apt state
  local root=$1
  cat >"$root/etc/dpkg/dpkg.cfg.d/90-homesec-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
CFG
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/*
  find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/cache/apt/*.bin "$root"/var/lib/apt/lists/*
  rm -rf "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old "$root"/var/log/* "$root"/tmp/* "$root"/root/.cache
  # Host-specific files debootstrap copied in; a runtime provides its own.
  : >"$root/etc/resolv.conf"
  echo localhost >"$root/etc/hostname"
}

make_rootfs_tarballs() {
  local work
  work=$(mktemp -d "$CACHE/work.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" EXIT
  log "debootstrap --variant=minbase $SUITE from $MIRROR (takes about a minute)"
  debootstrap --variant=minbase --include="$RUNTIME_PKGS,${BUILD_ONLY_PKGS[0]}" \
    "$SUITE" "$work/build" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -30 "$work/debootstrap.log" >&2; exit 1; }
  # The archive's Release Date (debootstrap keeps the Release file in the lists slim_rootfs removes).
  { sed -n 's/^Date: //p' "$work"/build/var/lib/apt/lists/*Release 2>/dev/null || true; } | head -1 \
    >"$CACHE/base-$RECIPE-archive-date"
  slim_rootfs "$work/build"
  cp -a "$work/build" "$work/runtime"
  chroot "$work/runtime" dpkg --purge "${BUILD_ONLY_PKGS[@]}" >/dev/null
  slim_rootfs "$work/runtime"
  for kind in runtime build; do
    chroot "$work/$kind" dpkg-query -W -f '${Package}=${Version}\n' >"$CACHE/base-$RECIPE-$kind.packages"
    tar --numeric-owner --xattrs -C "$work/$kind" -cf "$CACHE/base-$RECIPE-$kind.tar.part" .
    mv "$CACHE/base-$RECIPE-$kind.tar.part" "$CACHE/base-$RECIPE-$kind.tar"
  done
  rm -rf "$work"
  trap - EXIT
}

import_rootfs() {  # import_rootfs TAR TAG: "buildah from scratch" + unpack the rootfs + commit
  local tar=$1 tag=$2 ctr mnt py archive_date packages_sha debian_version
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar --numeric-owner --xattrs -C "$mnt" -xpf "$tar"
  py=$(chroot "$mnt" python3 -c 'import platform; print(platform.python_version())')
  archive_date=$(cat "$CACHE/base-$RECIPE-archive-date" 2>/dev/null || true)
  packages_sha=$(chroot "$mnt" dpkg-query -W -f '${Package}=${Version}\n' | LC_ALL=C sort | sha256sum | cut -d' ' -f1)
  debian_version=$(cat "$mnt/etc/debian_version")
  buildah umount "$ctr" >/dev/null
  buildah config \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --env LANG=C.UTF-8 \
    --cmd python3 --os linux --arch amd64 \
    --label org.opencontainers.image.title="homesec-base" \
    --label org.opencontainers.image.description="Debian $SUITE minbase + python3 $py (debootstrap, local)" \
    --label org.opencontainers.image.version="$SUITE-python$py" \
    --label io.homesec.base.recipe="$RECIPE" \
    --label io.homesec.base.debian-archive-date="${archive_date:-unknown}" \
    --label io.homesec.base.debian-version="$debian_version" \
    --label io.homesec.base.packages-sha256="$packages_sha" \
    "$ctr"
  buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
  log "imported $tag (python $py, recipe $RECIPE)"
}

if [ "${FORCE:-0}" = 1 ] || [ ! -s "$RUNTIME_TAR" ] || [ ! -s "$BUILD_TAR" ]; then
  make_rootfs_tarballs
else
  log "reusing rootfs tarballs from $CACHE"
fi
import_rootfs "$RUNTIME_TAR" "$BASE_IMAGE"
import_rootfs "$BUILD_TAR" "$BUILD_IMAGE"
# Old recipes' tarballs are dead weight.
find "$CACHE" -maxdepth 1 -name 'base-*' -not -name "base-$RECIPE-*" -delete
