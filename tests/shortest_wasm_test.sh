#!/usr/bin/env bash
# shortest() compiled to WebAssembly with em++ and run under Node.js gives, for every
# value of shortest_hash.cpp's sets, the same text as the native build's std::to_chars.
# Emscripten's libc++ (3.1.6) has no floating-point std::to_chars, so shortest() is
# detail::shortest_portable there; were it to gain one, its shortest_portable is compared
# too. Exit 77 (skipped) without em++ or node.
#   shortest_wasm_test.sh NATIVE_SHORTEST_HASH SOURCE_DIR EM++ NODE
set -u
native=$(realpath "$1")
src=$(realpath "$2")
emxx=$3
node=$4
command -v "$emxx" > /dev/null || { echo "skipped: em++ (Debian emscripten) not found"; exit 77; }
command -v "$node" > /dev/null || { echo "skipped: node (Node.js) not found"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2

# Debian's emscripten optimises the JavaScript with the acorn module, which Debian installs
# under /usr/share/nodejs. One file (the wasm inside the .js) and a Node-only loader:
# emscripten 3.1.6's loader would otherwise fetch() the .wasm by path, which Node >= 18
# has and rejects.
export NODE_PATH=${NODE_PATH:-/usr/share/nodejs}
if ! "$emxx" -std=c++20 -O2 -Wall -Wextra -Wpedantic -I"$src/include" -I"$src/tests" \
    "$src/lib/explain.cpp" "$src/lib/format.cpp" "$src/tests/shortest_hash.cpp" \
    -sENVIRONMENT=node -sSINGLE_FILE=1 -o shortest_hash.js > em.log 2>&1; then
  cat em.log
  echo "FAIL: em++ could not build shortest_hash.js"
  exit 1
fi
[ -s em.log ] && { echo "em++ said:"; cat em.log; }

fail=0
"$native" > native.txt || { echo "FAIL: $native exits $?"; exit 1; }
echo "native: $(head -1 native.txt)"
# Compares the set lines (all but the first, which names the standard library) of run $1
# with the native std::to_chars; on a difference, shows the first values that differ.
compare() {
  local name=$1; shift
  if ! "$@" > "$name.txt"; then echo "FAIL: $name exits non-zero"; fail=1; return; fi
  if [ "$(wc -l < "$name.txt")" -ne "$(wc -l < native.txt)" ] ||
     ! cmp -s <(tail -n +2 native.txt) <(tail -n +2 "$name.txt"); then
    echo "FAIL: $name differs from the native std::to_chars; first values:"
    "$native" --dump > native.dump
    "$@" --dump > "$name.dump"
    diff <(tail -n +2 native.dump) <(tail -n +2 "$name.dump") | head -20
    fail=1
  else
    echo "ok: $name: $(($(wc -l < "$name.txt") - 1)) sets equal the native std::to_chars"
  fi
}
compare "native shortest_portable" "$native" --portable
compare "wasm shortest" "$node" shortest_hash.js
echo "wasm: $(head -1 "wasm shortest.txt")"
if ! grep -q "no floating-point" "wasm shortest.txt"; then
  compare "wasm shortest_portable" "$node" shortest_hash.js --portable
fi
cat native.txt
exit $fail
