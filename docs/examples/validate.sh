#!/usr/bin/env bash
# docs/validating-kernels.md, steps 2 and 3, run as written on inputs made by the save_npy
# example (x.npy; e4m3fn codes A.npy, B.npy) and a stand-in for the GPU's output.
#   validate.sh FP8EMU SAVE_NPY_EXAMPLE
set -eu
tool=$1 save_npy=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir bin && ln -s "$tool" bin/fp8emu
export PATH="$work/bin:$PATH"
"$save_npy" . > /dev/null
mv A8.npy A.npy && mv B8.npy B.npy
S=64
# [doc:quantize]
fp8emu quantize --format e4m3fn --scale "$S" --nan nvidia x.npy q_emu.npy
# [/doc:quantize]
[[ -s q_emu.npy ]] || { echo "FAIL: quantize wrote no q_emu.npy"; exit 1; }
# The "GPU": float32 accumulation, rounded to bfloat16 and saved as codes.
fp8emu gemm --a A.npy --b B.npy --a-scale 0.5 --b-scale 0.125 --accumulate fp32 \
    --out-format bfloat16 D_gpu.npy > /dev/null
# [doc:gemm]
fp8emu gemm --a A.npy --b B.npy --a-scale 0.5 --b-scale 0.125 \
    --accumulate nvidia-h100-fp8 --out-format bfloat16 D_emu.npy
# [/doc:gemm]
set +e
# [doc:compare]
fp8emu compare --format bfloat16 --expected D_emu.npy --actual D_gpu.npy --json report.json
# [/doc:compare]
rc=$?
set -e
# 0 (all equal) or 1 (some differ); 2 would be bad input, such as two different dtypes.
if [[ $rc -ne 0 && $rc -ne 1 ]]; then echo "FAIL: compare exited $rc"; exit 1; fi
grep -q '"total": 256,' report.json || { echo "FAIL: report.json does not count 16 x 16 elements"; exit 1; }
echo "ok: gemm and compare ran as the page shows (compare exit $rc)"
