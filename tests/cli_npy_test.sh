#!/usr/bin/env bash
# fp8emu quantize / dequantize on .npy files made by NumPy (Debian python3-numpy), read
# back by NumPy: interop both ways, values, shapes, dtypes, --scale auto, and bad input
# (exit status 2, a message, and no output file). Exit 77 (skipped) without NumPy.
set -u
source "$(dirname "$0")/numpy_test_preamble.sh"

$py - <<'PY'
import numpy as np
v = np.array([0, 1, -1, 448, 500, -1e9, 3.3, 2**-9, 2**-10, np.inf, -np.inf, np.nan], np.float32)
np.save("f32.npy", v.reshape(3, 4))
np.save("f16.npy", np.array([1.5, -2.25, 65504, 6e-8], np.float16))
np.save("f64.npy", np.array([1.0 + 2**-30, 0.1], np.float64))
with open("v2.npy", "wb") as f:
    np.lib.format.write_array(f, np.arange(6, dtype=np.float32).reshape(2, 3), version=(2, 0))
np.save("fortran.npy", np.asfortranarray(np.ones((2, 3), np.float32)))
np.save("big.npy", np.ones(4, dtype=">f4"))
np.save("c64.npy", np.ones(4, dtype=np.complex64))
np.save("codes.npy", np.array([0x38, 0x7E, 0x7F, 0xC0], np.uint8))
np.save("bad_codes.npy", np.array([0x01, 0x40], np.uint8))
np.save("amax.npy", np.array([0.5, -3.0, 1.0], np.float32))
PY

"$tool" quantize --format e4m3fn f32.npy q.npy > q.txt; rc=$?
check "quantize float32 (2-D) exits 0" "[ $rc -eq 0 ]"
check "quantize prints amax (NaN in the input)" "grep -q 'amax nan' q.txt"
$py - <<'PY' || fail=1
import numpy as np
q = np.load("q.npy")
assert q.dtype == np.uint8 and q.shape == (3, 4), (q.dtype, q.shape)
# 0, 1, -1, 448, 500->448 (saturate), -1e9->-448, 3.3->3.25, 2^-9, 2^-10 -> 0 (tie to even),
# inf -> 448, -inf -> -448, nan -> 0x7F
want = [0x00, 0x38, 0xB8, 0x7E, 0x7E, 0xFE, 0x45, 0x01, 0x00, 0x7E, 0xFE, 0x7F]
assert q.ravel().tolist() == want, [hex(c) for c in q.ravel()]
print("ok: numpy reads the codes and they are right")
PY
"$tool" quantize --format e5m2 --output values --saturation none f32.npy v.npy > /dev/null
$py - <<'PY' || fail=1
import numpy as np
v = np.load("v.npy")
assert v.dtype == np.float32 and v.shape == (3, 4)
assert v[0, 3] == 448 and v[1, 0] == 512 and np.isinf(v[1, 1]) and v[1, 2] == 3.5 and np.isnan(v[2, 3])
print("ok: values output")
PY
"$tool" quantize --format e4m3fn f16.npy q16.npy > /dev/null && "$tool" quantize --format bfloat16 f64.npy qb.npy > /dev/null
$py - <<'PY' || fail=1
import numpy as np
assert np.load("q16.npy").tolist() == [0x3C, 0xC1, 0x7E, 0x00], np.load("q16.npy")
qb = np.load("qb.npy"); assert qb.dtype == np.uint16 and qb.tolist() == [0x3F80, 0x3DCD], qb
print("ok: float16 and float64 inputs, uint16 codes")
PY
"$tool" quantize --format e4m3fn --output values v2.npy v2out.npy > /dev/null
check "version 2.0 input" "$py -c 'import numpy as np; assert np.load(\"v2out.npy\").tolist() == [[0,1,2],[3,4,5]]'"
"$tool" quantize --format e4m3fn --scale auto --output values amax.npy auto.npy > auto.txt
check "--scale auto prints the scale" "grep -q 'amax 3; scale 149.33333' auto.txt"
check "--scale auto maps amax to max" "$py -c 'import numpy as np; v=np.load(\"auto.npy\"); assert abs(v[1] + 3.0) < 1e-6, v'"
"$tool" dequantize --format e4m3fn codes.npy d.npy > /dev/null
check "dequantize" "$py -c 'import numpy as np; d=np.load(\"d.npy\"); assert d.dtype==np.float32 and d[0]==1 and d[1]==448 and np.isnan(d[2]) and d[3]==-2, d'"
"$tool" dequantize --format e4m3fn --scale 2 --dtype float64 codes.npy d64.npy > /dev/null
check "dequantize --scale --dtype float64" "$py -c 'import numpy as np; d=np.load(\"d64.npy\"); assert d.dtype==np.float64 and d[1]==224, d'"
a1=$(mktemp); a2=$(mktemp)
"$tool" quantize --format e4m3fn --rounding sr-a --seed 9 --threads 1 f32.npy t1.npy > /dev/null
"$tool" quantize --format e4m3fn --rounding sr-a --seed 9 --threads 2 f32.npy t2.npy > /dev/null
check "stochastic output is the same on 1 and 2 threads" "cmp -s t1.npy t2.npy"

# gemm: NumPy makes the operands and checks the product; fp8emu multiplies.
$py -c '
import numpy as np
r = np.random.default_rng(4)
np.save("ga.npy", r.standard_normal((9, 70)).astype(np.float32))
np.save("gb.npy", r.standard_normal((70, 5)).astype(np.float32))
np.save("gbad.npy", r.standard_normal((71, 5)).astype(np.float32))
np.save("g3.npy", r.standard_normal((2, 3, 4)).astype(np.float32))
np.save("gs.npy", np.full((9, 1), 0.5, np.float32))
np.save("g16.npy", np.zeros((9, 70), np.uint16))
'
"$tool" quantize --format e4m3fn ga.npy gac.npy > /dev/null
"$tool" quantize --format e5m2 gb.npy gbc.npy > /dev/null
"$tool" dequantize --format e4m3fn gac.npy gav.npy > /dev/null
"$tool" dequantize --format e5m2 gbc.npy gbv.npy > /dev/null
"$tool" gemm --a gac.npy --b gbc.npy --b-format e5m2 gc.npy > gemm.txt
check "gemm of codes prints the accumulation" "grep -q 'accumulation fp32' gemm.txt"
check "gemm prints the path it takes" "grep -q '; path float32;' gemm.txt"
for spec_path in "fp16:accumulator" "fp16,rounding=sr-a:accumulator-wide" "nvidia-h100-fp8:unit" \
                 "nvidia-b200-fp8:unit-wide" "amd-mi300-fp8:unit-amd" "fp32,rounding=sr-a:reference"; do
  "$tool" gemm --a gac.npy --b gbc.npy --b-format e5m2 --accumulate "${spec_path%:*}" gp.npy > gp.txt
  check "gemm --accumulate ${spec_path%:*} prints path ${spec_path#*:}" "grep -q '; path ${spec_path#*:};' gp.txt"
done
check "gemm of codes equals NumPy on the decoded values" "$py -c 'import numpy as np; a=np.load(\"gav.npy\").astype(np.float64); b=np.load(\"gbv.npy\").astype(np.float64); c=np.load(\"gc.npy\"); assert c.dtype==np.float32 and c.shape==(9,5); e=a@b; assert np.abs(c-e).max() <= 1e-5*np.abs(a).dot(np.abs(b)).max(), np.abs(c-e).max()'"
"$tool" gemm --a ga.npy --b gb.npy --b-format e5m2 gf.npy > /dev/null
check "gemm of floats quantizes them first" "cmp -s gc.npy gf.npy"
"$tool" gemm --a gac.npy --b gbc.npy --b-format e5m2 --a-scale gs.npy --a-block 1x70 --alpha 2 gcs.npy > /dev/null
check "gemm with row scales 0.5 and alpha 2 equals the plain product" "cmp -s gc.npy gcs.npy"
"$tool" gemm --a gac.npy --b gbc.npy --b-format e5m2 --accumulate nvidia-h100-fp8,promote=32 --out-format e4m3fn gq.npy > /dev/null
check "gemm --out-format writes codes" "$py -c 'import numpy as np; q=np.load(\"gq.npy\"); assert q.dtype==np.uint8 and q.shape==(9,5)'"

# Bad input: exit 2, a message, and no output file (bad, numpy_test_preamble.sh).
bad "fortran order" "Fortran-order" quantize --format e4m3fn fortran.npy out.npy
bad "big-endian" "big-endian" quantize --format e4m3fn big.npy out.npy
bad "complex dtype" "unsupported dtype '<c8'" quantize --format e4m3fn c64.npy out.npy
bad "missing file" "cannot open" quantize --format e4m3fn nope.npy out.npy
bad "codes as input" "quantize reads float16, float32 or float64" quantize --format e4m3fn codes.npy out.npy
bad "floats as codes" "dequantize reads codes" dequantize --format e4m3fn f32.npy out.npy
bad "code too wide" "code 0x40 at index 1 does not fit in the 6 bits of e2m3fn" dequantize --format e2m3fn bad_codes.npy out.npy
bad "scale auto with NaN" "the input contains NaN" quantize --format e4m3fn --scale auto f32.npy out.npy
bad "bad scale" "invalid --scale '0'" quantize --format e4m3fn --scale 0 f32.npy out.npy
bad "wide codes" "codes of float32 need 32 bits; use --output values" quantize --format float32 f32.npy out.npy
bad "bad output" "unknown --output 'bits'" quantize --format e4m3fn --output bits f32.npy out.npy
bad "missing format" "usage: fp8emu quantize" quantize f32.npy out.npy
bad "sr bits" "invalid --sr-bits '33'" quantize --format e4m3fn --rounding sr-a --sr-bits 33 f32.npy out.npy
head -c 100 f32.npy > trunc.npy
bad "truncated file" "truncated\|needs" quantize --format e4m3fn trunc.npy out.npy
bad "output directory missing" "cannot" quantize --format e4m3fn f32.npy missing/out.npy
bad "gemm shape mismatch" "shape mismatch: A is 9x70 and B is 71x5" gemm --a ga.npy --b gbad.npy out.npy
bad "gemm 3-D operand" "expected a 2-D array" gemm --a g3.npy --b gb.npy out.npy
bad "gemm bad preset" "unknown preset 'h100'" gemm --a ga.npy --b gb.npy --accumulate h100 out.npy
bad "gemm bad key" "unknown key 'fbit'" gemm --a ga.npy --b gb.npy --accumulate nvidia-h100-fp8,fbit=3 out.npy
bad "gemm codes of the wrong type" "codes of e4m3fn are uint8" gemm --a g16.npy --b gb.npy out.npy
bad "gemm scale file without block" "needs --a-block" gemm --a gac.npy --b gbc.npy --a-scale gs.npy out.npy
bad "gemm scale file of the wrong size" "9 scales for 18 blocks" gemm --a gac.npy --b gbc.npy --a-scale gs.npy --a-block 1x35 out.npy
bad "gemm beta without C" "--beta needs --c" gemm --a ga.npy --b gb.npy --beta 1 out.npy
# Output targets: one that is not a regular file is refused and stays as it is (exit 2);
# a symbolic link to a regular file is written through; a name of 255 bytes works.
mkfifo pipe
"$tool" quantize --format e4m3fn f32.npy pipe > /dev/null 2> special.err; rc=$?
check "quantize to a FIFO: exit 2" "[ $rc -eq 2 ]"
check "quantize to a FIFO: message" "grep -q \"'pipe' is a FIFO\" special.err"
check "quantize to a FIFO: still a FIFO" "[ -p pipe ]"
mkdir outdir
"$tool" quantize --format e4m3fn f32.npy outdir > /dev/null 2> special.err; rc=$?
check "quantize to a directory: exit 2, still a directory" "[ $rc -eq 2 ] && [ -d outdir ] && grep -q 'is a directory' special.err"
"$tool" compare --format e4m3fn --expected q.npy --actual q.npy --json pipe > /dev/null 2> special.err; rc=$?
check "compare --json to a FIFO: exit 2, still a FIFO" "[ $rc -eq 2 ] && [ -p pipe ]"
mkdir real && ln -s real/target.npy link.npy && cp v.npy real/target.npy
"$tool" quantize --format e4m3fn f32.npy link.npy > /dev/null; rc=$?
check "quantize through a symbolic link: exit 0, the link stays, its target is written" \
  "[ $rc -eq 0 ] && [ -L link.npy ] && cmp -s real/target.npy q.npy"
long=$(printf 'n%.0s' $(seq 251)).npy
"$tool" quantize --format e4m3fn f32.npy "$long" > /dev/null; rc=$?
check "quantize to a name of 255 bytes" "[ $rc -eq 0 ] && [ \${#long} -eq 255 ] && cmp -s \"$long\" q.npy"
check "no temporary file left" "[ -z \"\$(ls -A | grep -e tmp- -e '^\.fp8emu-')\" ]"
exit $fail
