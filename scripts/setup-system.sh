#!/usr/bin/env bash
# Installs the Debian packages the project uses, only where missing (idempotent, needs root).
set -euo pipefail
pkgs=(prometheus buildah debootstrap gcc libc6-dev)  # gcc, libc6-dev: the compiled fold (scripts/build_native.py)
# ...which also needs the interpreter's headers: Debian's python3.11 keeps them in python3.11-dev.
inc=$(python3.11 -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)
[ -n "$inc" ] && [ ! -f "$inc/Python.h" ] && pkgs+=(python3.11-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system: need root to apt-get install: ${missing[*]}" >&2; exit 1
fi
echo "setup-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian prometheus package starts a system server on :9090; the project runs its own.
if command -v systemctl >/dev/null 2>&1; then systemctl disable --now prometheus prometheus-node-exporter >/dev/null 2>&1 || true; fi
pkill -x prometheus-node-exporter >/dev/null 2>&1 || true
pkill -x prometheus >/dev/null 2>&1 || true
