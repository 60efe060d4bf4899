#!/usr/bin/env bash
# Installs the Debian packages vitq needs (only those missing) and builds vitq in release mode.
# Usage: bash Deploy/setup.sh [--packages-only]   (--packages-only: install the packages, do not build;
#        the Dockerfile uses it so that the package list lives here only)
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libopenblas-dev libzmq3-dev libturbojpeg0-dev libpng-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

[ "${1:-}" = "--packages-only" ] && exit 0

# Build quietly (libzmq's pkg-config flags draw a harmless "prohibited flag" warning), keep the status.
set +e
swift build -c release 2>&1 | grep -vE '^(warning: prohibited flag|\[[0-9]+/[0-9]+\])'
status=${PIPESTATUS[0]}
set -e
[ "$status" -eq 0 ] || { echo "setup: swift build failed" >&2; exit "$status"; }
