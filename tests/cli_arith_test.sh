#!/usr/bin/env bash
# fp8emu arith on .npy files made by NumPy (Debian python3-numpy): operations, broadcast
# shapes, code dtypes in and out, the random stream, and bad input (exit status 2, a
# message, and no output file; an existing output left as it was). Exit 77 (skipped)
# without NumPy. The values are those of e4m3fn (OCP OFP8): 1 = 0x38, 2 = 0x40, 3 = 0x44,
# 4 = 0x48, 7 = 0x4E, 448 = 0x7E, NaN = 0x7F; bfloat16 1 = 0x3F80, 2 = 0x4000.
set -u
source "$(dirname "$0")/numpy_test_preamble.sh"

$py - <<'PY'
import numpy as np
np.save("a.npy", np.array([[0x38, 0x40, 0x44], [0x48, 0x7E, 0x00]], np.uint8))  # 1 2 3 / 4 448 0
np.save("b.npy", np.array([0x38, 0x40, 0x38], np.uint8))                        # 1 2 1
np.save("one.npy", np.array(0x38, np.uint8))                                     # 0-d
np.save("a32.npy", np.array([0x40, 0x44], np.int32))
np.save("bf.npy", np.array([0x3F80, 0x4000], np.uint16))
np.save("wide.npy", np.array([0x38, 0x12C], np.uint16))
np.save("neg.npy", np.array([0x38, -1], np.int32))
np.save("f32.npy", np.ones(3, np.float32))
np.save("col.npy", np.zeros((4, 1), np.uint8))
# More elements than the library runs on one thread (2^16), for --threads.
rng = np.random.default_rng(1)
np.save("big.npy", rng.integers(0, 256, size=(300, 1000), dtype=np.uint8))
PY

"$tool" arith add --format e4m3fn --a a.npy --b b.npy sum.npy > add.txt; rc=$?
check "add exits 0 and says what it did" "[ $rc -eq 0 ] && grep -q 'add of 6 codes of e4m3fn (rne, finite); shape 2x3; no random bits' add.txt"
# Row 2: 4 + 1 = 5 = 0x4A; 448 + 2 rounds to 448; 0 + 1 = 1.
check "add broadcasts b over the rows of a" "$py -c '
import numpy as np; s = np.load(\"sum.npy\")
assert s.dtype == np.uint8 and s.tolist() == [[0x40, 0x48, 0x48], [0x4A, 0x7E, 0x38]], s'"
"$tool" arith fma --format e4m3fn --a a32.npy --b a32.npy --c one.npy f.npy > /dev/null
check "fma with int32 codes and a 0-d addend: 2*2+1 = 5, 3*3+1 = 10" \
  "$py -c 'import numpy as np; assert np.load(\"f.npy\").tolist() == [0x4A, 0x52]'"
"$tool" arith sqrt --format e4m3fn --a a.npy r.npy > /dev/null
check "sqrt: 1 2 3 4 448 0 -> 1 1.375 1.75 2 22 0" \
  "$py -c 'import numpy as np; assert np.load(\"r.npy\").tolist() == [[0x38, 0x3B, 0x3E], [0x40, 0x5B, 0x00]]'"
"$tool" arith div --format e4m3fn --a b.npy --b col.npy d.npy > /dev/null
check "div by zero: +max under finite saturation, in the broadcast shape 4x3" \
  "$py -c 'import numpy as np; d = np.load(\"d.npy\"); assert d.shape == (4, 3) and (d == 0x7E).all(), d'"
"$tool" arith div --format e4m3fn --saturation none --a b.npy --b col.npy dn.npy > /dev/null
check "div by zero under saturation none: NaN (e4m3fn has no infinity)" \
  "$py -c 'import numpy as np; assert (np.load(\"dn.npy\") == 0x7F).all()'"
"$tool" arith mul --format bfloat16 --a bf.npy --b bf.npy m.npy > /dev/null
check "bfloat16 codes are uint16: 1*1, 2*2" \
  "$py -c 'import numpy as np; m = np.load(\"m.npy\"); assert m.dtype == np.uint16 and m.tolist() == [0x3F80, 0x4080]'"
"$tool" arith add --format e4m3fn --a big.npy --b big.npy --rounding sr-a --sr-bits 3 --seed 5 --stream 2 --threads 1 s1.npy > sr.txt
"$tool" arith add --format e4m3fn --a big.npy --b big.npy --rounding sr-a --sr-bits 3 --seed 5 --stream 2 --threads 2 s2.npy > /dev/null
check "stochastic rounding names its stream" "grep -q 'seed 5, 3 random bits, stream 2' sr.txt"
check "stochastic rounding does not depend on the thread count" "cmp -s s1.npy s2.npy"

# Bad input: exit 2, a message, and no output file (bad, numpy_test_preamble.sh).
bad "shapes that do not broadcast" "error: shapes 2x3 and 4x1 do not broadcast (--a 2x3, --b 4x1)" \
  arith add --format e4m3fn --a a.npy --b col.npy out.npy
bad "a code wider than the format" "error: the code 0x12C at index 1 of operand a does not fit in the 8 bits of e4m3fn" \
  arith add --format e4m3fn --a wide.npy --b wide.npy out.npy
bad "a negative int32 code" "error: --b: negative code -1 at index 1 of neg.npy" \
  arith add --format e4m3fn --a a32.npy --b neg.npy out.npy
bad "float operands" "error: --a: f32.npy holds float32; arith reads codes as uint8, uint16 or int32" \
  arith sqrt --format e4m3fn --a f32.npy out.npy
bad "a missing operand" "error: add takes 2 operands: give --b" arith add --format e4m3fn --a a.npy out.npy
bad "an operand too many" "error: sqrt takes 1 operand; --b is not one" \
  arith sqrt --format e4m3fn --a a.npy --b b.npy out.npy
bad "an unknown operation" "error: unknown operation 'pow' (one of add, sub, mul, div, fma, sqrt)" \
  arith pow --format e4m3fn --a a.npy --b b.npy out.npy
bad "a format wider than 16 bits" "error: codes of float32 need 32 bits; arith reads and writes formats of at most 16 bits" \
  arith add --format float32 --a a.npy --b b.npy out.npy
bad "a bad rounding" "error: unknown rounding 'up'" arith add --format e4m3fn --a a.npy --b b.npy --rounding up out.npy
bad "a missing file" "cannot open" arith add --format e4m3fn --a nope.npy --b b.npy out.npy
bad "no output" "usage: fp8emu arith OP" arith add --format e4m3fn --a a.npy --b b.npy
cp sum.npy keep.npy
"$tool" arith add --format e4m3fn --a wide.npy --b wide.npy keep.npy 2> /dev/null; rc=$?
check "a failed run leaves an existing output as it was" "[ $rc -eq 2 ] && cmp -s sum.npy keep.npy"
exit $fail
