#!/usr/bin/env bash
# docs/simulator.md's recipe file (docs/examples/my.recipe): fp8study reads it and lists
# what it means; the same file with a misspelt key is refused with the file, the line and
# the key.
#   docs_recipe_test.sh FP8STUDY docs/examples/my.recipe docs/simulator.md
set -u
study=$1 recipe=$2 page=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
fail=0
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }
"$study" --recipes "$recipe" --list-recipes > list.txt 2>&1; rc=$?
check "--list-recipes reads the file (exit 0)" "[ $rc -eq 0 ]"
check "its name" "grep -qx 'name = hybrid-bf16-master' list.txt"
check "master weights bfloat16, rounded stochastically" "grep -qx 'master = bfloat16:sr' list.txt"
check "gradients (dgrad.a, wgrad.a) scaled per tensor with margin 1" \
  "grep -qx 'dgrad.a.scaling = tensor:margin=1' list.txt && grep -qx 'wgrad.a.scaling = tensor:margin=1' list.txt"
check "the rest from fp8-hybrid-current: e4m3fn weights, per tensor" \
  "grep -qx 'fprop.b.format = e4m3fn' list.txt && grep -qx 'fprop.b.scaling = tensor' list.txt"
sed 's/^grad\.scaling/gradient.scaling/' "$recipe" > my.recipe
"$study" --recipes my.recipe --list-recipes > bad.txt 2>&1; rc=$?
check "a misspelt key exits 2" "[ $rc -eq 2 ]"
# The page shows the message as `my.recipe:LINE: unknown recipe key 'gradient.scaling' ...`.
shown=$(sed -n "s/.*\`\(my\.recipe:[0-9]*: unknown recipe key 'gradient\.scaling'\) \.\.\.\`.*/\1/p" "$page")
check "the page shows the message" "[ -n \"\$shown\" ]"
check "the message is the one the page shows: $shown" "grep -q -F \"fp8study: \$shown \" bad.txt"
exit $fail
