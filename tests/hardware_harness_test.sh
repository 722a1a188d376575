#!/usr/bin/env bash
# fp8hw (the GPU harness, built with -DFP8EMU_CUDA=ON) on a machine without a GPU, as in
# CI: --help, bad usage (exit 2), and a run that says there is no device (exit 3) and
# writes nothing. On a Hopper machine the run itself goes through (exit 0 or 1).
set -u
tool=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
checks=0
check() { checks=$((checks + 1)); if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
"$tool" --help > "$work/help.txt"; rc=$?
check "--help exits 0 and names the checks" "[ $rc -eq 0 ] && grep -q 'conversions, mma, wgmma, cublaslt' '$work/help.txt'"
version=$("$tool" --version); rc=$?
check "--version exits 0 and prints fp8hw VERSION" "[ $rc -eq 0 ] && [[ '$version' =~ ^fp8hw\ [0-9]+\.[0-9]+\.[0-9]+$ ]]"
"$tool" --cases > "$work/cases.txt"; rc=$?
check "--cases: every discriminating case tells nvidia-h100-fp8 from another model (no GPU)" \
  "[ $rc -eq 0 ] && grep -q '^0 of 6 cases give every listed model the same bits' '$work/cases.txt'"
"$tool" --checks bogus 2> "$work/err.txt"; rc=$?
check "unknown check exits 2 with a message" "[ $rc -eq 2 ] && grep -q \"unknown check 'bogus'\" '$work/err.txt'"
"$tool" --instructions 0 2> "$work/err.txt"; rc=$?
check "--instructions 0 exits 2" "[ $rc -eq 2 ] && grep -q \"invalid --instructions '0'\" '$work/err.txt'"
"$tool" --quick --checks conversions --out "$work/out" > "$work/run.txt" 2> "$work/err.txt"; rc=$?
if [ $rc -eq 3 ]; then
  check "without a suitable GPU: exit 3, a message, no results" \
    "grep -q 'no CUDA device\|built for sm_90a' '$work/err.txt' && [ ! -e '$work/out' ]"
else
  check "on a GPU: the conversion checks ran" "[ $rc -le 1 ] && [ -s '$work/out/results.md' ]"
fi
echo "$checks checks"
exit $fail
