#!/usr/bin/env bash
# Installs the Debian packages of the named groups, only where missing (idempotent; root only to install).
#   bash scripts/setup-system.sh build        gcc, libc6-dev (+ python3.11-dev): the compiled fold (make native)
#   bash scripts/setup-system.sh prometheus   prometheus, promtool: the dashboard, rule and metrics tests
#   bash scripts/setup-system.sh images       buildah, debootstrap: make images
# No group: all of them. Packages are installed with every service start refused (a policy-rc.d present
# only during the install), so a package that ships a service (prometheus) does not start it. This script
# never stops, disables or kills a service or process: the tests run a Prometheus of their own.
set -euo pipefail

groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(build prometheus images)
pkgs=()
for group in "${groups[@]}"; do
  case "$group" in
    build)
      pkgs+=(gcc libc6-dev)  # scripts/build_native.py (mypyc) ...
      # ...which also needs the interpreter's headers: Debian's python3.11 keeps them in python3.11-dev.
      inc=$(python3.11 -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null || true)
      if [ -n "$inc" ] && [ ! -f "$inc/Python.h" ]; then pkgs+=(python3.11-dev); fi
      ;;
    prometheus) pkgs+=(prometheus) ;;
    images) pkgs+=(buildah debootstrap) ;;
    *) echo "setup-system: unknown group '$group' (build, prometheus, images)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-system: need root to apt-get install: ${missing[*]}" >&2; exit 1
fi

# invoke-rc.d and deb-systemd-invoke ask /usr/sbin/policy-rc.d before starting a service: exit 101 refuses.
# An existing policy-rc.d is set aside and put back afterwards, whatever happens.
policy=${SETUP_SYSTEM_POLICY_RC_D:-/usr/sbin/policy-rc.d}  # another path: tests only
saved=""
restore_policy() {
  rm -f "$policy"
  if [ -n "$saved" ]; then mv -f "$saved" "$policy"; fi
}
if [ -e "$policy" ]; then saved=$(mktemp "$policy.homesec.XXXXXX"); cp -p "$policy" "$saved"; fi
trap restore_policy EXIT
printf '#!/bin/sh\n# Written by homesec-telemetry scripts/setup-system.sh during apt-get install.\nexit 101\n' >"$policy"
chmod 755 "$policy"

echo "setup-system: installing ${missing[*]} (services not started)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
