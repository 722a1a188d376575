#!/usr/bin/env bash
# The README's "use it from your program": install the build tree into a scratch prefix,
# build the examples against it with g++ alone and with find_package, and run them.
#   install.sh BUILD_DIR SOURCE_DIR
set -eu
build_dir=$1 source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
ln -s "$build_dir" build   # the README's commands run from the repository root
mkdir docs && ln -s "$source_dir/docs/examples" docs/examples
PREFIX=$work/prefix
# [doc:install]
cmake --install build --prefix "$PREFIX"
g++ -std=c++20 -O2 docs/examples/array.cpp -I"$PREFIX/include" -L"$PREFIX/lib" -lfp8emu -fopenmp -o array
./array
cmake -S docs/examples -B build-examples -DCMAKE_PREFIX_PATH="$PREFIX"   # or with CMake
cmake --build build-examples
build-examples/gemm
# [/doc:install]
# Every example, built both ways, prints what its .expected file says.
fail=0
for ex in docs/examples/*.cpp; do
  name=$(basename "$ex" .cpp)
  g++ -std=c++20 -O2 "$ex" -I"$PREFIX/include" -L"$PREFIX/lib" -lfp8emu -fopenmp -o "g++-$name"
  for exe in "./g++-$name" "build-examples/$name"; do
    if "$exe" "$work" | cmp -s - "docs/examples/$name.expected"; then
      echo "ok: $exe"
    else
      echo "FAIL: $exe does not print docs/examples/$name.expected"; fail=1
    fi
  done
done
exit $fail
