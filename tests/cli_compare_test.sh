#!/usr/bin/env bash
# fp8emu compare on .npy files made by NumPy: exit status 0 / 1 / 2, the printed report,
# the JSON report read back by Python, the tolerance, --as, the quantize -> gemm ->
# compare workflow of docs/validating-kernels.md, and bad input (exit 2, a message, no
# report file). Exit 77 (skipped) without NumPy.
set -u
source "$(dirname "$0")/numpy_test_preamble.sh"
fail=0
checks=0
check() { checks=$((checks + 1)); if ! eval "$2"; then echo "FAIL: $1"; fail=1; else echo "ok: $1"; fi; }

$py - <<'PY'
import numpy as np
rng = np.random.default_rng(7)
e = rng.integers(0, 0x7F, size=(16, 32), dtype=np.uint8)  # finite e4m3fn codes, + and -
e[rng.random(e.shape) < 0.5] |= 0x80
np.save("e.npy", e)
a = e.copy()
a[0, 1] = e[0, 1] + 1 if (e[0, 1] & 0x7F) < 0x7E else e[0, 1] - 1  # 1 ulp
a[2, 3] = 0x7F                                                  # NaN vs number
a[5, 6] = e[5, 6] ^ 0x80                                        # sign
np.save("a.npy", a)
np.save("a16.npy", a.astype(np.uint16))
np.save("a_shape.npy", a[:8])
x = np.abs(rng.standard_normal((4, 5))).astype(np.float32) + 0.5
np.save("x.npy", x)
y = x.copy()
y[1, 2] = np.nextafter(y[1, 2], np.float32(9))
y[3, 4] = np.nextafter(np.nextafter(y[3, 4], np.float32(0)), np.float32(0))
np.save("y.npy", y)
np.save("x16.npy", x.astype(np.float16))
y16 = x.astype(np.float16)
y16[0, 0] = np.nextafter(y16[0, 0], np.float16(9))  # 1 float16 ulp
np.save("y16.npy", y16)
np.save("x64.npy", x.astype(np.float64))
np.save("empty.npy", np.zeros((0, 3), np.float32))
np.save("wide.npy", np.array([0x01, 0x40], np.uint8))
np.save("narrow.npy", np.array([0x01, 0x02], np.uint8))
# The workflow: operands for fp8emu quantize and gemm; nonnegative, so that the
# float32 sum and the float64 sum differ by at most a few ulps (no cancellation).
np.save("A.npy", np.abs(rng.standard_normal((8, 32))).astype(np.float32))
np.save("B.npy", np.abs(rng.standard_normal((32, 6))).astype(np.float32))
PY

# 1. Identical arrays: exit 0, PASS.
"$tool" compare --format e4m3fn --expected e.npy --actual e.npy > same.txt; rc=$?
check "identical codes exit 0" "[ $rc -eq 0 ]"
check "identical codes: PASS, all bit-exact" "grep -q 'PASS: every element is bit-exact' same.txt && grep -q 'bit-exact *512  100.0000%' same.txt"

# 2. Mismatches: exit 1 and the whole report, printed and as JSON.
"$tool" compare --format e4m3fn --expected e.npy --actual a.npy --json r.json > diff.txt; rc=$?
check "mismatching codes exit 1" "[ $rc -eq 1 ]"
check "report counts" "grep -q 'bit-exact *509' diff.txt && grep -q 'beyond tolerance *3' diff.txt"
check "report classes" "grep -q 'nan_vs_number *1' diff.txt && grep -q 'sign *1' diff.txt && grep -q 'magnitude *1' diff.txt"
check "report histogram" "grep -q '^  (0, 1]  *1$' diff.txt && grep -q 'not comparable *1' diff.txt"
check "first mismatches: index, decoded value, hex" "grep -qE '^  \[0, 1\] +1 +-?[0-9.e-]+ \(0x[0-9A-F]{2}\) ' diff.txt && grep -q 'nan (0x7F)' diff.txt"
check "FAIL line" "grep -q 'FAIL: 3 elements differ by more than 0 ulps' diff.txt"
$py - <<'PY' || { echo "FAIL: JSON report"; fail=1; }
import json, numpy as np
r = json.load(open("r.json"))
e, a = np.load("e.npy"), np.load("a.npy")
assert r["total"] == e.size and r["exact"] == int((e == a).sum()) == 509, r
assert r["failed"] == 3 and r["passed"] is False and r["shape"] == [16, 32]
assert r["by_class"]["nan_vs_number"] == 1 and r["by_class"]["sign"] == 1 and r["by_class"]["magnitude"] == 1
assert [m["index"] for m in r["first_mismatches"]] == [1, 2 * 32 + 3, 5 * 32 + 6]
m = r["first_mismatches"][1]
assert m["actual_hex"] == "0x7F" and m["actual"] == "nan" and m["ulps"] == "inf" and m["at"] == "[2, 3]", m
assert r["first_mismatches"][0]["ulps"] == 1
print("ok: JSON report read back by Python")
PY
checks=$((checks + 1))

# 3. Tolerance and --show; uint16 codes of an 8-bit format.
"$tool" compare --format float32 --expected x.npy --actual y.npy > t0.txt; rc0=$?
"$tool" compare --format float32 --expected x.npy --actual y.npy --tolerance-ulps 2 > t2.txt; rc2=$?
"$tool" compare --format float32 --expected x.npy --actual y.npy --tolerance-ulps 1 --show 1 > t1.txt; rc1=$?
check "float32 values 1 and 2 ulps off: exit 1 at tolerance 0" "[ $rc0 -eq 1 ]"
check "... exit 0 at tolerance 2, both tolerated" "[ $rc2 -eq 0 ] && grep -q 'within tolerance *2' t2.txt && grep -q 'PASS: 2 mismatches, all within 2 ulps' t2.txt"
check "... exit 1 at tolerance 1, --show 1 lists one" "[ $rc1 -eq 1 ] && grep -q 'first 1 mismatches' t1.txt && grep -q '(tolerated)' t1.txt"
"$tool" compare --format e4m3fn --expected e.npy --actual a.npy --as codes > /dev/null; rc=$?
check "--as codes explicit exits 1 on mismatches" "[ $rc -eq 1 ]"
"$tool" compare --format float16 --expected x16.npy --actual y16.npy --tolerance-ulps 1 > h.txt; rc=$?
check "float16 values (auto --as values), 1 ulp within tolerance 1" "grep -q 'float16 values (float16' h.txt && [ $rc -eq 0 ] && grep -q 'within tolerance *1' h.txt"
"$tool" compare --format bfloat16 --expected x64.npy --actual x64.npy > b.txt; rc=$?
check "float64 values on the bfloat16 grid: off-grid count" "[ $rc -eq 0 ] && grep -q 'not values of bfloat16: 20 expected, 20 actual' b.txt"
"$tool" compare --format e4m3fn --expected empty.npy --actual empty.npy > em.txt; rc=$?
check "empty arrays exit 0" "[ $rc -eq 0 ] && grep -q 'compare: 0 elements' em.txt"

# 4. The workflow of docs/validating-kernels.md: quantize, emulate, compare with a
#    "kernel" (NumPy in float64, rounded once to float32).
"$tool" quantize --format e4m3fn A.npy Aq.npy > /dev/null && "$tool" quantize --format e4m3fn B.npy Bq.npy > /dev/null &&
  "$tool" gemm --a Aq.npy --b Bq.npy --a-format e4m3fn --b-format e4m3fn expected.npy > /dev/null &&
  "$tool" gemm --a Aq.npy --b Bq.npy --a-format e4m3fn --b-format e4m3fn --accumulate nvidia-h100-fp8 h100.npy > /dev/null &&
  "$tool" dequantize --format e4m3fn Aq.npy Av.npy > /dev/null && "$tool" dequantize --format e4m3fn Bq.npy Bv.npy > /dev/null
check "workflow: quantize, gemm, dequantize" "[ $? -eq 0 ]"
$py -c "
import numpy as np
a = np.load('Av.npy').astype(np.float64); b = np.load('Bv.npy').astype(np.float64)
np.save('kernel.npy', (a @ b).astype(np.float32))
"
"$tool" compare --format float32 --expected expected.npy --actual kernel.npy --tolerance-ulps 64 --json w.json > w.txt; rc=$?
check "workflow: fp32 emulation within 64 ulps of the float64 product" "[ $rc -eq 0 ]"
"$tool" compare --format float32 --expected h100.npy --actual kernel.npy --json h.json > /dev/null; rc=$?
check "workflow: the truncating nvidia-h100-fp8 emulation differs from the float64 product (exit 1)" "[ $rc -eq 1 ] && grep -q '\"passed\": false' h.json"

# 5. Bad input: exit 2, a message, no report file.
bad() {
  checks=$((checks + 1))
  rm -f bad.json
  "$tool" "${@:3}" --json bad.json > out.txt 2> err.txt
  local rc=$?
  if [ $rc -ne 2 ] || ! grep -q -- "$2" err.txt || [ -e bad.json ]; then
    echo "FAIL: $1 (rc $rc, stderr: $(cat err.txt))"
    fail=1
  else
    echo "ok: $1"
  fi
}
head -c 90 e.npy > trunc.npy
bad "shape mismatch" "shape mismatch: e.npy is 16x32, a_shape.npy is 8x32" compare --format e4m3fn --expected e.npy --actual a_shape.npy
bad "dtype mismatch" "dtype mismatch: e.npy holds uint8, a16.npy holds uint16" compare --format e4m3fn --expected e.npy --actual a16.npy
bad "unreadable file" "--actual: cannot" compare --format e4m3fn --expected e.npy --actual missing.npy
bad "truncated file" "--expected: .*truncated\|--expected: .*needs" compare --format e4m3fn --expected trunc.npy --actual e.npy
bad "code too wide" "element 1: code 64 of the expected array does not fit in the 6 bits of e2m3fn" compare --format e2m3fn --expected wide.npy --actual narrow.npy
bad "uint8 for a 16-bit format" "codes of bfloat16 have 16 bits; uint8 cannot hold them" compare --format bfloat16 --expected e.npy --actual e.npy
bad "--as codes on floats" "--as codes needs arrays of codes" compare --format e4m3fn --expected x.npy --actual y.npy --as codes
bad "--as values on codes" "--as values needs float16, float32 or float64 arrays" compare --format e4m3fn --expected e.npy --actual a.npy --as values
bad "unknown --as" "unknown --as 'bits'" compare --format e4m3fn --expected e.npy --actual a.npy --as bits
bad "negative tolerance" "invalid --tolerance-ulps '-1'" compare --format e4m3fn --expected e.npy --actual a.npy --tolerance-ulps -1
bad "NaN tolerance" "invalid --tolerance-ulps 'nan'" compare --format e4m3fn --expected e.npy --actual a.npy --tolerance-ulps nan
bad "missing --actual" "usage: fp8emu compare" compare --format e4m3fn --expected e.npy
bad "unknown format" "invalid format" compare --format e9m9 --expected e.npy --actual a.npy
"$tool" compare --format e4m3fn --expected e.npy --actual e.npy --json nodir/r.json > /dev/null 2> err.txt; rc=$?
check "unwritable JSON path exits 2 with a message" "[ $rc -eq 2 ] && grep -q 'cannot' err.txt"
"$tool" compare --help > help.txt; rc=$?
check "--help exits 0" "[ $rc -eq 0 ] && grep -q 'usage: fp8emu compare' help.txt"

echo "$checks checks"
exit $fail
