#!/usr/bin/env bash
# The README's tour of the fp8emu command, run as written from a scratch directory that
# holds the inputs (made by the save_npy example); then what its comments say is checked.
#   tool.sh FP8EMU SAVE_NPY_EXAMPLE
set -u
tool=$1 save_npy=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 2
"$save_npy" . > /dev/null || { echo "FAIL: $save_npy"; exit 1; }
"$tool" gemm --a A.npy --b B.npy --a-scale auto --b-scale auto --accumulate fp32 gpu.npy > /dev/null ||
  { echo "FAIL: making gpu.npy"; exit 1; }
# build/tools/fp8emu runs the tool and logs each call: its exit status, then its output.
mkdir -p build/tools log
cat > build/tools/fp8emu <<WRAPPER
#!/usr/bin/env bash
n=\$(ls "$work/log" | grep -c "\\.rc\$")
"$tool" "\$@" > "$work/log/\$n.out" 2>&1
rc=\$?
echo "\$rc \$*" > "$work/log/\$n.rc"
exit \$rc
WRAPPER
chmod +x build/tools/fp8emu

# [doc:tool]
build/tools/fp8emu formats                          # every format, max/min/epsilon/special codes (--csv: CSV)
build/tools/fp8emu explain e4m3fn 3.3               # fields, value, neighbours, error in ulps
build/tools/fp8emu explain e5m2 70000 --saturation none --rounding rz
build/tools/fp8emu explain e4m3fn 1.03 --rounding sr-a --sr-bits 8 --random 200
build/tools/fp8emu explain e4m3fn --code 0x7E       # what a code means
build/tools/fp8emu table e2m1fn                     # every code and its value, CSV
build/tools/fp8emu quantize --format e4m3fn --scale auto x.npy codes.npy   # .npy arrays
build/tools/fp8emu quantize --format e5m2 --rounding sr-a --seed 1 --output values x.npy y.npy
build/tools/fp8emu dequantize --format e4m3fn --scale 149.33 codes.npy back.npy
build/tools/fp8emu gemm --a A.npy --b B.npy --a-scale auto --b-scale auto \
    --accumulate nvidia-h100-fp8,promote=128 C.npy            # emulated FP8 matrix multiply
build/tools/fp8emu gemm --a A.npy --b B.npy --a-scale block:1x128 --b-scale block:128x128 D.npy  # DeepSeek-V3
build/tools/fp8emu gemm --a A.npy --b B.npy --a-scale mx --b-scale mx MX.npy        # MXFP8
build/tools/fp8emu gemm --a A.npy --b B.npy --a-scale nvfp4 --b-scale nvfp4 F4.npy  # NVFP4
build/tools/fp8emu compare --format bfloat16 --expected C.npy --actual gpu.npy --json r.json
                                      # a kernel's output vs the emulation: ulps, classes, exit 0/1
# [/doc:tool]

fail=0
calls=$(ls log/*.rc | wc -l)
check() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi; }
has() { grep -q -E -e "$2" "log/$1.out"; }
status() { cut -d' ' -f1 "log/$1.rc"; }
check "14 commands ran" "[ $calls -eq 14 ]"
for i in 0 1 2 3 4 5 6 7 8 9 10 11 12; do
  check "call $i exits 0: $(cut -d' ' -f2- log/$i.rc 2>/dev/null)" "[ \"\$(status $i)\" = 0 ]"
done
check "compare exits 0 or 1 (bad input would be 2)" "[ \"\$(status 13)\" = 0 ] || [ \"\$(status 13)\" = 1 ]"
check "formats lists e4m3fn with max 448" "has 0 '^e4m3fn +8 +4 +3 +7 fn +448'"
check "e4m3fn(3.3) is 0x45 = 3.25" "has 1 'code +0x45' && has 1 'value +3.25'"
check "70000 toward zero without saturation is e5m2's max, 57344" "has 2 'value +57344'"
check "1.03 with StochasticA, 8 bits, R = 200: floor(0.24 * 256) + 200 >= 256, up to 1.125" \
  "has 3 'code +0x39' && has 3 'value +1.125'"
check "e4m3fn code 0x7E is 448" "has 4 'value +448'"
check "the e2m1fn table has 16 codes, 0x7 = 6" "[ \$(grep -c -E '^[0-9]+,0x' log/5.out) -eq 16 ] && has 5 '^7,0x7,.*,6$'"
check "the block-scaled GEMMs print their scales" "has 10 'blocks' && has 11 'blocks' && has 12 'blocks'"
check "the .npy outputs exist" "[ -s codes.npy ] && [ -s y.npy ] && [ -s back.npy ] && [ -s C.npy ] && [ -s D.npy ] && [ -s MX.npy ] && [ -s F4.npy ] && [ -s r.json ]"
exit $fail
