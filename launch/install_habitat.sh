#!/usr/bin/env bash
# Builds habitat-sim 0.3.3 from its public source, headless (EGL; renders on a GPU or on Mesa's
# llvmpipe with sim.gpu_device_id=-1), into the active Python environment, for aeqa's
# `habitat` backend (sim.type=habitat) on any Python that conda's habitat-sim does not serve.
#   - system packages: build tools, Eigen, OpenEXR, EGL / OpenGL headers and Mesa's drivers;
#   - cmake < 4 (habitat-sim 0.3.3's CMake files predate CMake 4) and ninja from pip;
#   - the sources at tag v0.3.3 with their submodules, then `pip install .` (about 15 minutes on
#     8 cores; without Bullet physics, audio, CUDA or GUI viewers), then its magnum bindings,
#     then its runtime dependencies with numpy 2.x.
# Usage: bash launch/install_habitat.sh [--src DIR] [--jobs N]
#   --src DIR   where the sources are cloned and built (default: ~/.cache/aeqa/habitat-sim)
#   --jobs N    parallel compile jobs (default: all cores; each takes up to ~2 GB of memory)
# PYTHON selects the interpreter (default: python3); run it inside your virtualenv.
# With conda, `conda install habitat-sim headless -c conda-forge -c aihabitat` is quicker.
set -euo pipefail

PYTHON="${PYTHON:-python3}"
VERSION="v0.3.3"
SRC="${HOME}/.cache/aeqa/habitat-sim"
JOBS="$(nproc 2>/dev/null || echo 4)"
while (($#)); do
  case "$1" in
    --src) SRC="${2:?--src needs a folder}"; shift 2 ;;
    --jobs) JOBS="${2:?--jobs needs a number}"; shift 2 ;;
    *) echo "install_habitat.sh: unknown option $1 (use --src DIR, --jobs N)" >&2; exit 2 ;;
  esac
done
if ! [[ "$JOBS" =~ ^[1-9][0-9]*$ ]]; then
  echo "install_habitat.sh: --jobs must be a positive number, got $JOBS" >&2
  exit 2
fi

if "$PYTHON" -c "import habitat_sim" >/dev/null 2>&1; then
  echo "install_habitat.sh: habitat-sim is already installed ($("$PYTHON" -c \
    'import habitat_sim; print(habitat_sim.__version__)')); nothing to do"
  exit 0
fi

SYSTEM_PACKAGES=(build-essential git pkg-config libeigen3-dev libopenexr-dev zlib1g-dev
  libegl1-mesa-dev libgl1-mesa-dev libopengl0 libgl1-mesa-dri)
if command -v dpkg-query >/dev/null 2>&1; then
  missing=()
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    [[ "$status" == *"install ok installed"* ]] || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    echo "install_habitat.sh: installing system packages: ${missing[*]}"
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
else
  echo "install_habitat.sh: not a Debian system; install ${SYSTEM_PACKAGES[*]} (or their" \
    "equivalents) yourself, then run this again" >&2
fi

# --no-build-isolation builds against these, so they are installed first.
"$PYTHON" -m pip install -q "cmake>=3.22,<4" ninja "setuptools>=69" wheel "numpy>=2,<2.4"

if [ ! -d "$SRC/.git" ]; then
  mkdir -p "$(dirname "$SRC")"
  git clone --branch "$VERSION" --depth 1 --recurse-submodules --shallow-submodules \
    https://github.com/facebookresearch/habitat-sim.git "$SRC"
else
  git -C "$SRC" fetch --depth 1 origin tag "$VERSION"
  git -C "$SRC" checkout -q "$VERSION"
  git -C "$SRC" submodule update --init --recursive --depth 1
fi

echo "install_habitat.sh: building habitat-sim $VERSION in $SRC with $JOBS jobs (about 15 min)"
(
  cd "$SRC"
  export CMAKE_BUILD_PARALLEL_LEVEL="$JOBS"
  HEADLESS=True WITH_BULLET=False WITH_AUDIO=False WITH_CUDA=False \
    CMAKE_ARGS="-DUSE_SYSTEM_OPENEXR=ON -DUSE_SYSTEM_EIGEN=ON" \
    "$PYTHON" -m pip install . --no-deps --no-build-isolation \
    --config-settings="--build-option=--build-type=Release --no-update-submodules"
)

# Under pip, habitat-sim's setup leaves its magnum bindings built but not installed.
magnum_dir="$(find "$SRC/build" -type d -path '*deps/magnum-bindings/src/python' -print -quit)"
if [ -z "$magnum_dir" ]; then
  echo "install_habitat.sh: the magnum bindings were not built under $SRC/build" >&2
  exit 1
fi
"$PYTHON" -m pip install -q "$magnum_dir"

# habitat-sim's own requirements, with numpy 2.x (it pins numpy 1.26.4 and pillow 10.4.0; the
# build above ran against numpy 2, and it works with it).
"$PYTHON" -m pip install -q attrs gitpython imageio imageio-ffmpeg matplotlib numba \
  "numpy>=2,<2.4" numpy-quaternion "pillow>=10" "scipy>=1.10.1" tqdm

"$PYTHON" -c "import habitat_sim, magnum; print('install_habitat.sh: habitat-sim', \
habitat_sim.__version__, 'installed; use it with sim.type=habitat (aeqa explore --sim habitat)')"
