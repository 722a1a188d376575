#!/usr/bin/env bash
# The explorer's WebAssembly module against the native build of the same entry points
# (web/explorer_api.cpp): the same requests (explorer_requests.py: every catalog format and
# more, every code, the values and ties that decide the roundings, every mode), run natively
# (explorer_dump) and in the module under Node.js (explorer_dump.js), must give the same bytes.
#   module_test.sh FP8EMU_TOOL EXPLORER_DUMP EXPLORER_DIR
set -u
tool=$1 dump=$2 dir=$3
here=$(cd "$(dirname "$0")" && pwd)
module=$dir/fp8emu_explorer.js
node=$(command -v node || command -v nodejs || true)
[[ -n $node ]] || { echo "skipped: Node.js not found (Debian: nodejs, which emscripten installs)"; exit 77; }
[[ -f $module ]] || { echo "FAIL: no module $module (is the explorer built?)"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 "$here/explorer_requests.py" "$tool" > "$work/requests" || { echo "FAIL: requests"; exit 1; }
requests=$(wc -l < "$work/requests")
(( requests > 100000 )) || { echo "FAIL: only $requests requests"; exit 1; }
"$dump" < "$work/requests" > "$work/native" || { echo "FAIL: the native dump failed"; exit 1; }
"$node" "$here/explorer_dump.js" "$module" < "$work/requests" > "$work/wasm" ||
  { echo "FAIL: the module's dump failed"; exit 1; }
results=$(wc -l < "$work/native")
wasm_results=$(wc -l < "$work/wasm")
echo "requests $requests, results $results native and $wasm_results in the module"
(( results == requests && wasm_results == requests )) || { echo "FAIL: result counts"; exit 1; }
# The digests compared one by one; the first mismatches are run again in full on both sides.
mismatches=$(paste -d ' ' "$work/native" "$work/wasm" | awk '$1 != $3 || $2 != $4' | wc -l)
echo "sweep explorer module vs native: $results results, $mismatches mismatches"
if (( mismatches > 0 )); then
  paste "$work/native" "$work/wasm" | awk -F '\t' '$1 != $2 { print NR }' | head -3 | while read -r i; do
    sed -n "${i}p" "$work/requests" > "$work/one"
    echo "request: $(cat "$work/one")"
    diff <("$dump" --full < "$work/one") <("$node" "$here/explorer_dump.js" "$module" --full < "$work/one") | head -20
  done
  exit 1
fi
# The bad inputs must have been refused, on both sides alike (their digests are equal).
errors=$("$dump" --full < <(grep -E '^(format|explain|code|codes)' "$work/requests" | head -40) | grep -c '^  "error": ')
echo "of the first 40 requests, $errors are refused with a message"
(( errors >= 20 )) || { echo "FAIL: the bad inputs gave only $errors errors"; exit 1; }
