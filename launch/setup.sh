#!/usr/bin/env bash
# Installs aeqa and everything it needs on a fresh Debian/Ubuntu machine:
#   - system libraries: open3d's (libgl1, libegl1, libgomp1, libusb-1.0-0) and EGL with Mesa's
#     software driver (libgl1-mesa-dri) for headless rendering without a display or GPU;
#   - PyTorch (where none is installed yet), then this package in editable mode.
# Usage: bash launch/setup.sh [--dev]     (--dev adds pytest, ruff, mypy, playwright, and a
#   system Chromium that playwright drives for the HTML report's browser test)
# PYTHON selects the interpreter (default: python3); run it inside your virtualenv or conda env.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
EXTRAS=""
DEV=0
for arg in "$@"; do
  case "$arg" in
    --dev) EXTRAS="[dev]"; DEV=1 ;;
    *) echo "setup.sh: unknown option $arg (use --dev)" >&2; exit 2 ;;
  esac
done
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

SYSTEM_PACKAGES=(libgl1 libegl1 libgomp1 libusb-1.0-0 libgl1-mesa-dri)
if ((DEV)); then
  # The report's browser test runs this Chromium through playwright (no browser download).
  SYSTEM_PACKAGES+=(chromium)
fi
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == *"install ok installed"* ]] || missing+=("$pkg")
  done
fi
if ((${#missing[@]})); then
  echo "setup.sh: installing system libraries: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
elif ! command -v dpkg-query >/dev/null 2>&1; then
  echo "setup.sh: not a Debian system; install OpenGL, EGL (Mesa), libgomp and libusb yourself" >&2
fi

if ! "$PYTHON" -c "import torch" >/dev/null 2>&1; then
  # The CPU build is enough for the offline heads; a GPU machine may install any CUDA build.
  "$PYTHON" -m pip install -q "torch==2.13.0" || "$PYTHON" -m pip install -q "torch>=2.1"
fi
"$PYTHON" -m pip install -q -e "${ROOT}${EXTRAS}"
echo "setup.sh: aeqa installed ($("$PYTHON" -c 'import sys; print(sys.executable)'))"
