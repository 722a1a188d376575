#!/usr/bin/env bash
# Builds a reader's libFuzzer target with clang (AddressSanitizer and UBSan) and runs it
# for a bounded time from a small seed corpus. Exit 77 (skipped) without clang.
#   run_fuzz.sh SOURCE_DIR WORK_DIR SECONDS [npy|checkpoint]
#   npy: the .npy reader (lib/npy.cpp); checkpoint: the checkpoint reader
#   (sim/src/checkpoint.cpp, seeds written by the target's seed build).
set -eu
src=$1 work=$2 secs=$3 target=${4:-npy}
cxx=$(command -v clang++ || command -v clang++-14 || true)
[ -n "$cxx" ] || { echo "skipped: clang++ not found (Debian clang, libclang-rt-14-dev)"; exit 77; }
flags=(-std=c++20 -O1 -g -fno-sanitize-recover=undefined -I"$src/include")
case $target in
  npy)
    mkdir -p "$work/corpus"
    "$cxx" "${flags[@]}" -fsanitize=fuzzer,address,undefined \
      "$src/lib/file.cpp" "$src/lib/npy.cpp" "$src/tests/fuzz/fuzz_npy.cpp" -o "$work/fuzz_npy"
    seed() { printf "$2" > "$work/corpus/$1"; }
    seed v1 "\x93NUMPY\x01\x00\x46\x00{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1), }          \n\x00\x00\x80\x3f\x00\x00\x00\x40"
    seed v2 "\x93NUMPY\x02\x00\x3a\x00\x00\x00{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": (3,)}  \n\x01\x02\x03"
    seed scalar "\x93NUMPY\x01\x00\x38\x00{'descr': '<f8', 'fortran_order': True, 'shape': ()}    \n\x00\x00\x00\x00\x00\x00\xf0\x3f"
    corpus=$work/corpus binary=$work/fuzz_npy ;;
  checkpoint)
    mkdir -p "$work/checkpoint-corpus"
    flags+=(-I"$src/sim/include")
    "$cxx" "${flags[@]}" -fsanitize=address,undefined -DFP8SIM_FUZZ_SEEDS \
      "$src/sim/src/checkpoint.cpp" "$src/tests/fuzz/fuzz_checkpoint.cpp" -lz -o "$work/checkpoint_seeds"
    "$work/checkpoint_seeds" "$work/checkpoint-corpus"
    "$cxx" "${flags[@]}" -fsanitize=fuzzer,address,undefined \
      "$src/sim/src/checkpoint.cpp" "$src/tests/fuzz/fuzz_checkpoint.cpp" -lz -o "$work/fuzz_checkpoint"
    corpus=$work/checkpoint-corpus binary=$work/fuzz_checkpoint ;;
  *) echo "unknown target '$target' (npy, checkpoint)"; exit 2 ;;
esac
"$binary" -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 -print_final_stats=1 "$corpus" 2>&1 | tail -15
