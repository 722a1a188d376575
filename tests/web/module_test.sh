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
results=$(grep -c '^%%$' "$work/native")
wasm_results=$(grep -c '^%%$' "$work/wasm")
errors=$(grep -c '"error":' "$work/native")
echo "requests $requests, results $results native and $wasm_results in the module, $errors of them errors"
(( results == requests && wasm_results == requests )) || { echo "FAIL: result counts"; exit 1; }
(( errors >= 20 )) || { echo "FAIL: the bad inputs gave only $errors errors"; exit 1; }
# Both sides split into results, compared one by one, to count and show the mismatches.
/usr/bin/python3 - "$work/requests" "$work/native" "$work/wasm" <<'PY'
import sys
req = open(sys.argv[1]).read().split("\n")
a = open(sys.argv[2]).read().split("%%\n")
b = open(sys.argv[3]).read().split("%%\n")
bad = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
print(f"sweep explorer module vs native: {len(a) - 1} results, {len(bad)} mismatches")
for i in bad[:5]:
    print("request:", req[i]); print("native:", a[i][:600]); print("module:", b[i][:600])
sys.exit(1 if bad or len(a) != len(b) else 0)
PY
