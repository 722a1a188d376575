#!/usr/bin/env bash
# The two commands of README.md, on a fresh Debian 12 machine as root:
#   bash tools/run.sh main   installs what is missing, builds, runs the main job (the
#                            Fashion-MNIST precision study; extra arguments go to fp8study)
#   bash tools/run.sh test   installs what is missing, builds, runs every test
# Environment: BUILD_DIR (default build), JOBS (default: number of cores).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
BUILD_DIR=${BUILD_DIR:-build}
JOBS=${JOBS:-$(nproc)}

# Debian packages the project needs; only the missing ones are installed.
packages=(cmake g++ make libxsimd-dev libboost-dev libmpfr-dev libgmp-dev catch2 zlib1g-dev
          libbenchmark-dev libopenblas-dev python3-numpy clang libclang-rt-14-dev
          dataset-fashion-mnist gnuplot-nox)

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing: ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $sudo apt-get install -y --no-install-recommends "${missing[@]}"; then
    $sudo apt-get update
    $sudo apt-get install -y --no-install-recommends "${missing[@]}"
  fi
}

build() {
  echo "== configuring and building in $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@"
  cmake --build "$BUILD_DIR" -j "$JOBS"
}

case "$mode" in
  main)
    install_missing
    build -DFP8EMU_BUILD_TESTS=OFF
    # The Fashion-MNIST precision study: seven named recipes, 3 seeds, 10 epochs (about
    # 9 minutes on 2 cores, docs/study.md); extra arguments go to fp8study (see --help).
    echo "== fp8study (Fashion-MNIST precision study)"
    "$BUILD_DIR/experiments/fp8study" --out results/fashion-mnist "${@:2}"
    echo
    echo "== report: results/fashion-mnist/report.md"
    ;;
  test)
    install_missing
    # The GPU harness is compiled wherever nvcc exists (never run without a GPU).
    cuda=()
    if command -v nvcc > /dev/null || [ -x /usr/local/cuda/bin/nvcc ]; then cuda=(-DFP8EMU_CUDA=ON); fi
    build -DFP8EMU_BUILD_TESTS=ON "${cuda[@]}"
    echo "== running every test"
    status=0
    (cd "$BUILD_DIR" && ctest --output-on-failure -j "$JOBS" --timeout 1500) 2>&1 | tee "$BUILD_DIR/ctest.log" ||
      status=$?
    echo "== exhaustive sweeps (case and mismatch counts)"
    grep -h "^sweep " "$BUILD_DIR/Testing/Temporary/LastTest.log" | sort -u || true
    # ctest's own closing line, last, for whoever reads the log.
    grep -E "tests passed, [0-9]+ tests failed out of" "$BUILD_DIR/ctest.log" | tail -1 || true
    exit $status
    ;;
  *)
    echo "usage: bash tools/run.sh main|test" >&2
    exit 2
    ;;
esac
