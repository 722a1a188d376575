#!/usr/bin/env bash
# The two commands of README.md, on a fresh Debian 12 machine as root:
#   bash tools/run.sh main   installs what is missing, prepares the text, builds, runs the
#                            main job (the language-model precision study; extra arguments
#                            go to fp8lm, or with --fashion-mnist first to fp8study)
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
          dataset-fashion-mnist gnuplot-nox bible-kjv python3-torch python3-dev python3-pybind11
          python3-pytest libopenmpi-dev openmpi-bin emscripten chromium)

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

# The King James Bible as one UTF-8 text file (the language-model study's default --data),
# written once: to a temporary file first, moved into place only when complete.
prepare_text() {
  local text=data/bible-kjv.txt
  [ -s "$text" ] && return 0
  echo "== preparing $text (bible-kjv)"
  mkdir -p data
  local tmp
  tmp=$(mktemp data/.bible-kjv.XXXXXX)
  if ! bible Genesis1:1-Revelation22:21 > "$tmp" || [ ! -s "$tmp" ]; then
    rm -f "$tmp"
    echo "cannot write $text with bible (apt-get install bible-kjv)" >&2
    exit 1
  fi
  chmod 644 "$tmp"
  mv "$tmp" "$text"
}

build() {
  echo "== configuring and building in $BUILD_DIR"
  cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release "$@"
  cmake --build "$BUILD_DIR" -j "$JOBS"
  # The Python package, into the interpreter's site directory (docs/python.md), so that
  # `python3 -c "import fp8emu"` works; skipped where it was not built.
  if [ -d "$BUILD_DIR/python/fp8emu" ]; then
    echo "== installing the Python package fp8emu"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo cmake --install "$BUILD_DIR" --component python
  fi
}

case "$mode" in
  main)
    install_missing
    build -DFP8EMU_BUILD_TESTS=OFF
    if [ "${2:-}" = "--fashion-mnist" ]; then
      # The Fashion-MNIST precision study: seven named recipes, 3 seeds, 10 epochs
      # (about 9 minutes on 2 cores, docs/study.md); further arguments go to fp8study (see --help).
      echo "== fp8study (Fashion-MNIST precision study)"
      "$BUILD_DIR/experiments/fp8study" --out results/fashion-mnist "${@:3}"
      echo
      echo "== report: results/fashion-mnist/report.md"
    else
      # The language-model precision study: a 4-layer GPT on the King James Bible under 7
      # recipes, 2 seeds each (docs/lm-study.md); extra arguments go to fp8lm (see --help).
      prepare_text
      echo "== fp8lm (language-model precision study)"
      "$BUILD_DIR/experiments/fp8lm" --out results/lm "${@:2}"
      echo
      echo "== report: results/lm/report.md"
    fi
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
    if ls "$BUILD_DIR"/web/artifacts/*.png > /dev/null 2>&1; then
      echo "== the browser explorer's screenshots (web: the explorer in headless Chromium ...)"
      ls -l "$BUILD_DIR"/web/artifacts/*.png
    fi
    # ctest's own closing line, last, for whoever reads the log.
    grep -E "tests passed, [0-9]+ tests failed out of" "$BUILD_DIR/ctest.log" | tail -1 || true
    exit $status
    ;;
  *)
    echo "usage: bash tools/run.sh main|test" >&2
    exit 2
    ;;
esac
