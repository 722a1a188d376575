# Sourced by the shell tests that make and read .npy files with NumPy (Debian
# python3-numpy): sets `tool` (the program, $1, as an absolute path), `py`, and a scratch
# directory `work` that is removed on exit and made the current directory, and the helpers
# check and bad below. Exits 77
# (skipped, SKIP_RETURN_CODE in tests/CMakeLists.txt) when NumPy is missing.
tool=$(realpath "$1")
py=/usr/bin/python3
$py -c "import numpy" 2>/dev/null || { echo "skipped: python3-numpy is not installed"; exit 77; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2

# `check NAME CONDITION` evaluates CONDITION and prints "ok: NAME" or "FAIL: NAME"; `fail`
# is 1 after any failure (the script's exit status).
fail=0
check() { if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
# `bad NAME REGEX ARGS...` runs the program with ARGS and checks that it exits 2, prints
# REGEX on stderr, and leaves neither out.npy nor a temporary file behind.
bad() {
  local name=$1 regex=$2; shift 2
  rm -f out.npy
  "$tool" "$@" > bad.out 2> bad.err; local rc=$?
  check "$name: exit 2" "[ $rc -eq 2 ]"
  check "$name: message" "grep -q -- \"$regex\" bad.err"
  check "$name: no output file" "[ ! -e out.npy ] && [ -z \"\$(ls -A | grep -e tmp- -e '^\.fp8emu-')\" ]"
}
