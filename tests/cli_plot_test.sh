#!/usr/bin/env bash
# fp8emu plot: every kind drawn to PNG and SVG (real files: PNG magic bytes, SVG that
# parses as XML), the same bytes from the same command, --data (the script and data kept,
# and drawn again by gnuplot alone), the data against tables written from the specs (OCP
# MX v1.0 for e2m1fn, IEEE 754 for binary16), bad input (exit 2, a message, no output
# file, an existing one unchanged), gnuplot missing or failing (exit 1), and the figures
# of docs/formats.md drawn again by the command written above each, byte for byte.
#   cli_plot_test.sh FP8EMU SOURCE_DIR
# Exit 77 (skipped) without gnuplot.
set -u
tool=$(realpath "$1")
src=$(realpath "$2")
command -v gnuplot > /dev/null || { echo "skipped: gnuplot not found"; exit 77; }
py=/usr/bin/python3
[ -x "$py" ] || py=python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
mkdir tmp
export TMPDIR=$work/tmp  # where plot makes its temporary directory; it must be left empty
fail=0
checks=0
check() { checks=$((checks + 1)); if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }
is_png() { [ "$(head -c 8 "$1" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; }
plain() { [[ $1 != *[\"\'\\\;\|\&\$\<\>\`]* ]]; }  # no quotes or shell syntax
is_svg() { $py -c 'import sys, xml.dom.minidom as m; d = m.parse(sys.argv[1]); assert d.documentElement.tagName == "svg"' "$1"; }
# The lines of a data file that are not comments, column $2.
column() { grep -v '^#' "$1" | awk -v c="$2" '{ print $c }' | tr '\n' ' ' | sed 's/ $//'; }

# 1. Every kind, both file types, real files; the same command gives the same bytes.
kinds=("numberline e4m3fn e5m2 e2m1fn float16" "spacing e4m3fn e5m2 bfloat16" "error e4m3fn --rounding rne,rz,ru --range 1:16"
       "error float32 --range 1:2 --units ulp --samples 101" "spacing float32" "numberline float32 binary8p3ue e8m0fnu")
drawn=0
for k in "${kinds[@]}"; do
  read -ra args <<< "$k"
  "$tool" plot "${args[@]}" -o a.png > out.log 2>&1; rc1=$?
  "$tool" plot "${args[@]}" -o a.svg >> out.log 2>&1; rc2=$?
  "$tool" plot "${args[@]}" -o b.svg >> out.log 2>&1; rc3=$?
  check "plot $k: exit 0 ($(head -c 300 out.log))" "[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ $rc3 -eq 0 ] && [ ! -s out.log ]"
  check "plot $k: a PNG" "is_png a.png"
  check "plot $k: an SVG that parses as XML" "is_svg a.svg"
  check "plot $k: the same bytes twice" "cmp -s a.svg b.svg"
  drawn=$((drawn + 1))
done
check "all ${#kinds[@]} plots drawn" "[ $drawn -eq ${#kinds[@]} ] && [ $drawn -eq 6 ]"
check "no temporary directory left" "[ -z \"\$(ls -A tmp)\" ]"
"$tool" plot --help > help.txt; rc=$?
check "--help: exit 0, usage and kinds" "[ $rc -eq 0 ] && grep -q '^usage: fp8emu plot KIND FORMAT' help.txt && grep -q 'numberline' help.txt && grep -q 'papers and hardware mean' help.txt"
"$tool" --help | grep -q '^  plot ' && check "main help lists plot" "true" || check "main help lists plot" "false"

# 2. --data: the script and data are kept; gnuplot alone draws the same picture again.
"$tool" plot numberline e2m1fn -o n.svg --data d > /dev/null 2>&1; rc=$?
check "--data: exit 0, plot.gp, values-1.dat and the picture" "[ $rc -eq 0 ] && [ -s d/plot.gp ] && [ -s d/values-1.dat ] && cmp -s d/plot.svg n.svg"
check "--data: plot.gp reads values-1.dat and draws plot.svg.tmp" "grep -q \"'values-1.dat'\" d/plot.gp && grep -q \"set output 'plot.svg.tmp'\" d/plot.gp"
(cd d && gnuplot plot.gp 2> /dev/null)
check "--data: gnuplot plot.gp in DIR draws the same bytes" "cmp -s d/plot.svg.tmp n.svg"

# 3. The data against the specs. OCP MX v1.0 (section 5.3.3, FP4 E2M1): the positive values
#    are 0.5 (the one subnormal), 1, 1.5, 2, 3, 4, 6.
e2m1=(0.5 1 1.5 2 3 4 6)
check "numberline e2m1fn: the values of the OCP MX table" "[ \"$(column d/values-1.dat 1)\" = \"${e2m1[*]}\" ]"
check "numberline e2m1fn: only 0.5 is subnormal" "[ \"$(column d/values-1.dat 3)\" = '1 0 0 0 0 0 0' ]"
check "numberline e2m1fn: the binades" "[ \"$(column d/values-1.dat 2)\" = '-1 0 0 1 1 2 2' ]"
# IEEE 754 binary16: subnormal binades 2^-24 .. 2^-15 hold 1, 2, 4, ..., 512 values, the 30
# normal binades 2^-14 .. 2^15 1024 each: 31743 positive finite values.
"$tool" plot numberline float16 -o f.svg --data f > /dev/null 2>&1
want=""; for i in $(seq 0 9); do want+="$((1 << i)) "; done; for i in $(seq 1 30); do want+="1024 "; done
check "numberline float16: counts per binade from IEEE 754" "[ \"$(column f/binades-1.dat 5)\" = \"${want% }\" ]"
check "numberline float16: 31743 values, binades from 2^-24" "[ \"$(column f/binades-1.dat 5 | tr ' ' '\n' | awk '{ s += $1 } END { print s }')\" = 31743 ] && [ \"$(column f/binades-1.dat 3 | cut -d' ' -f1)\" = -24 ]"
# The spacing of e2m1fn: (next - x) / x at each value below 6, from the table above.
"$tool" plot spacing e2m1fn -o s.svg --data s > /dev/null 2>&1
$py - "${e2m1[@]}" <<'PY' && check "spacing e2m1fn: (next - x) / x of the table" "true" || check "spacing e2m1fn: (next - x) / x of the table" "false"
import sys
v = [float(a) for a in sys.argv[1:]]
rows = [l.split() for l in open("s/spacing-1.dat") if not l.startswith("#")]
want = [(v[i], (v[i + 1] - v[i]) / v[i]) for i in range(len(v) - 1)]
got = [(float(x), float(s)) for x, s in rows]
assert len(got) == 6 and got == want, (got, want)
PY
# The error of e2m1fn at x = i/4 on 0:6 (25 samples), by hand from the table: rz takes the
# largest value <= x, rne the nearest, a tie to the even code (0, 1, 2, 4 end in mantissa 0).
"$tool" plot error e2m1fn --rounding rz,rne --range 0:6 --samples 25 -o e.svg --data e > /dev/null 2>&1; rc=$?
check "error e2m1fn: exit 0, 24 rows (x = 0 has no relative error)" "[ $rc -eq 0 ] && [ \$(grep -vc '^#' e/error.dat) -eq 24 ]"
$py - <<'PY' && check "error e2m1fn: rz and rne at chosen x, relative" "true" || check "error e2m1fn: rz and rne at chosen x, relative" "false"
rows = {float(l.split()[0]): [float(c) for c in l.split()[1:]] for l in open("e/error.dat") if not l.startswith("#")}
assert sorted(rows) == [i / 4 for i in range(1, 25)], sorted(rows)
#        x: (rz result, rne result)
hand = {0.25: (0, 0), 0.75: (0.5, 1), 1.25: (1, 1), 2.5: (2, 2), 3.5: (3, 4), 5: (4, 4), 5.75: (4, 6), 6: (6, 6)}
for x, (rz, rne) in hand.items():
    assert rows[x] == [(rz - x) / x, (rne - x) / x], (x, rows[x])
PY
"$tool" plot error e2m1fn --rounding rz --range 0:6 --samples 25 --units ulp -o u.svg --data u > /dev/null 2>&1; rc=$?
$py - <<'PY' && check "error e2m1fn --units ulp: error / gap between neighbours" "true" || check "error e2m1fn --units ulp: error / gap between neighbours" "false"
rows = {float(l.split()[0]): float(l.split()[1]) for l in open("u/error.dat") if not l.startswith("#")}
assert len(rows) == 25 and rows[0] == 0, rows
# x: (rz result, gap between the neighbours of x)
hand = {0.25: (0, 0.5), 0.75: (0.5, 0.5), 2.5: (2, 1), 5.75: (4, 2)}
for x, (rz, gap) in hand.items():
    assert rows[x] == (rz - x) / gap, (x, rows[x])
PY
"$tool" plot error e4m3fn --range 1:16 --samples 5 --log -o l.svg --data l > /dev/null 2>&1; rc=$?
check "error --log: x = 1 2 4 8 16, exact, error 0" "[ $rc -eq 0 ] && [ \"$(column l/error.dat 1)\" = '1 2 4 8 16' ] && [ \"$(column l/error.dat 2)\" = '0 0 0 0 0' ]"

# 4. Bad input: exit 2, a message, no output; an existing output is not replaced.
bad() {  # NAME REGEX ARGS...
  local name=$1 regex=$2; shift 2
  rm -f out.svg
  "$tool" plot "$@" > bad.out 2> bad.err; local rc=$?
  check "$name: exit 2" "[ $rc -eq 2 ]"
  check "$name: message" "grep -q -- \"$regex\" bad.err"
  check "$name: no output file" "[ ! -e out.svg ] && [ ! -e out.pdf ] && [ -z \"\$(ls -A | grep -e '\.tmp$' -e '^\.fp8emu-')\" ]"
  echo keep > out.svg
  "$tool" plot "$@" > /dev/null 2>&1; rc=$?
  check "$name: an existing output kept" "[ $rc -eq 2 ] && [ \"\$(cat out.svg)\" = keep ]"
}
bad "unknown kind" "unknown plot kind 'bogus' (numberline, spacing, error)" bogus e4m3fn -o out.svg
bad "unknown format" "invalid format 'e9m1'" numberline e9m1 -o out.svg
bad "no format" "plot spacing needs a FORMAT" spacing -o out.svg
bad "no -o" "plot needs -o OUT.png or -o OUT.svg" numberline e4m3fn
bad "other extension" "the picture must be a .png or .svg file" numberline e4m3fn -o out.pdf
bad "too many formats" "draws 1 to 4 formats, not 5" numberline e4m3fn e5m2 e2m1fn e3m2fn e2m3fn -o out.svg
bad "error of two formats" "plot error draws one FORMAT, not 2" error e4m3fn e5m2 -o out.svg
bad "range without a colon" "invalid --range '1'" error e4m3fn --range 1 -o out.svg
bad "range not a number" "invalid --range 'a'" error e4m3fn --range a:2 -o out.svg
bad "LO >= HI" "LO must be below HI" error e4m3fn --range 2:2 -o out.svg
bad "range beyond max" "e4m3fn's finite values lie in -448:448" error e4m3fn --range 0:500 -o out.svg
bad "negative range, unsigned" "an unsigned format has no negative values" error e8m0fnu --range -1:1 -o out.svg
bad "stochastic rounding" "a stochastic mode's error is random" error e4m3fn --rounding rne,sr-a -o out.svg
bad "unknown rounding" "unknown rounding 'up'" error e4m3fn --rounding up -o out.svg
bad "rounding twice" "rz given twice" error e4m3fn --rounding rz,rz -o out.svg
bad "units" "unknown --units 'bits'" error e4m3fn --units bits -o out.svg
bad "samples 1" "invalid --samples '1' (expected 2..100000)" error e4m3fn --samples 1 -o out.svg
bad "samples too many" "invalid --samples '100001'" error e4m3fn --samples 100001 -o out.svg
bad "log from 0" "--log needs --range LO:HI with LO > 0" error e4m3fn --log -o out.svg
bad "error options elsewhere" "--range is an option of plot error, not of plot numberline" numberline e4m3fn --range 1:2 -o out.svg
bad "unknown option" "unknown option '--bogus'" numberline e4m3fn --bogus -o out.svg
rm -f out.svg

# 5. gnuplot missing or failing: exit 1 with the reason; an existing output is not replaced.
echo keep > out.svg
PATH=/nonexistent "$tool" plot numberline e4m3fn -o out.svg > /dev/null 2> miss.err; rc=$?
check "gnuplot missing: exit 1, the reason" "[ $rc -eq 1 ] && grep -q 'gnuplot is not installed or not on PATH' miss.err"
check "gnuplot missing: output kept" "[ \"\$(cat out.svg)\" = keep ]"
mkdir fake
printf '#!/bin/sh\necho "half a picture" > plot.svg.tmp\necho "line 9: something went wrong" >&2\nexit 3\n' > fake/gnuplot
chmod +x fake/gnuplot
PATH=$work/fake:$PATH "$tool" plot numberline e4m3fn -o out.svg > /dev/null 2> failed.err; rc=$?
check "gnuplot failing: exit 1, its status and last message" "[ $rc -eq 1 ] && grep -q 'gnuplot failed on plot.gp (exit status 3): line 9: something went wrong' failed.err"
check "gnuplot failing: output kept, no temporary directory left" "[ \"\$(cat out.svg)\" = keep ] && [ -z \"\$(ls -A tmp)\" ]"
printf '#!/bin/sh\nexit 0\n' > fake/gnuplot
PATH=$work/fake:$PATH "$tool" plot numberline e4m3fn -o out.svg > /dev/null 2> none.err; rc=$?
check "gnuplot drawing nothing: exit 1, output kept" "[ $rc -eq 1 ] && grep -q 'gnuplot wrote no .*plot.svg.tmp' none.err && [ \"\$(cat out.svg)\" = keep ]"

# 6. The figures of docs/formats.md: each is drawn again by the command written above it
#    (a line "fp8emu plot ... -o docs/images/NAME.svg" in a bash block), here in a scratch
#    copy of the layout, and must equal the committed file byte for byte. The SVG names the
#    gnuplot that drew it; another gnuplot may place things differently, so with another
#    version the bytes are not compared (said so), only that the file is drawn.
doc=$src/docs/formats.md
mapfile -t cmds < <(awk '/^```bash$/ { inb = 1; next } /^```/ { inb = 0 } inb && /^fp8emu plot / { print }' "$doc")
images=$(cd "$src" && ls docs/images/*.svg 2>/dev/null | wc -l)
check "docs/formats.md: 3 or 4 plot commands, one per committed SVG (${#cmds[@]} commands, $images SVGs)" \
  "[ ${#cmds[@]} -ge 3 ] && [ ${#cmds[@]} -le 4 ] && [ ${#cmds[@]} -eq $images ]"
have=$(gnuplot --version)
mkdir -p docs-copy/docs/images
compared=0
for c in "${cmds[@]}"; do
  check "doc command has no quotes or shell syntax: $c" 'plain "$c"'
  read -ra words <<< "$c"
  out=""
  for ((i = 0; i < ${#words[@]}; ++i)); do [ "${words[i]}" = -o ] && out=${words[i + 1]}; done
  check "doc command writes docs/images/*.svg: $c" "[[ \$out == docs/images/*.svg ]] && [ -f \"\$src/\$out\" ]"
  (cd docs-copy && "$tool" "${words[@]:1}" > /dev/null 2>&1)
  check "doc command runs: $c" "is_svg docs-copy/$out"
  made_by=$(grep -o 'Produced by GNUPLOT [0-9.]* patchlevel [0-9]*' "$src/$out" | sed 's/Produced by GNUPLOT/gnuplot/')
  if [ "$made_by" = "$have" ]; then
    check "$out: the committed bytes, drawn again" "cmp -s docs-copy/$out \"\$src/\$out\""
    compared=$((compared + 1))
  else
    echo "note: $out was drawn by ${made_by:-an unknown gnuplot}, this is $have: bytes not compared"
  fi
done
echo "compared $compared of ${#cmds[@]} figures byte for byte"
echo "$checks checks"
exit $fail
