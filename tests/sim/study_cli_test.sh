#!/usr/bin/env bash
# fp8study on short runs: the same numbers whatever the thread count; an interrupted and
# resumed study ends with the numbers of an uninterrupted one; bad input exits 2 with a
# clear message and no results; the outputs of a complete run are all there.
# Usage: study_cli_test.sh FP8STUDY WORKDIR
set -uo pipefail
study=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fails=0
checks=0
ok() { checks=$((checks + 1)); echo "ok: $1"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $1"; }

short=(--recipes fp32,fp8-hybrid-delayed,mxfp8,fp8-e4m3-blockwise --seeds 2 --epochs 2 --train-limit 1536
       --test-limit 500 --progress none --no-plots --log-every 3)
same_numbers() {  # dir1 dir2: every file without wall times is byte for byte the same
  for f in epochs.csv steps.csv quant_stats.csv; do
    cmp -s "$1/$f" "$2/$f" || return 1
  done
}

# 1. Threads: 1 thread, 3 threads (runs in parallel), and one run alone on 2 threads (the
# GEMMs and array kernels threaded inside the run) against 1 thread.
"$study" "${short[@]}" --threads 1 --out t1 > t1.log 2>&1 || bad "threads 1 run failed: $(tail -3 t1.log)"
"$study" "${short[@]}" --threads 3 --out t3 > t3.log 2>&1 || bad "threads 3 run failed"
if same_numbers t1 t3; then ok "1 and 3 threads give the same numbers"; else bad "1 and 3 threads differ"; fi
one=(--recipes fp8-e4m3-blockwise --seeds 1 --epochs 1 --train-limit 1536 --test-limit 500 --progress none
     --no-plots --stats-every 1)
"$study" "${one[@]}" --threads 1 --out o1 > o1.log 2>&1 || bad "single run, 1 thread, failed"
"$study" "${one[@]}" --threads 2 --out o2 > o2.log 2>&1 || bad "single run, 2 threads, failed"
if same_numbers o1 o2; then ok "one run on 1 and 2 threads gives the same numbers"; else bad "one run differs with 2 threads"; fi
# The numbers are not trivially equal: different seeds differ.
if cmp -s <(grep ',1,' t1/epochs.csv | cut -d, -f3-) <(grep ',2,' t1/epochs.csv | cut -d, -f3-); then
  bad "seeds 1 and 2 gave identical results"; else ok "seeds 1 and 2 differ"; fi

# 2. Resume: stop after epoch 1, then --resume; the same numbers as the uninterrupted t1.
"$study" "${short[@]}" --threads 2 --out r --stop-after-epoch 1 > r1.log 2>&1 || bad "interrupted run failed"
grep -q "stopped after epoch 1" r1.log && ok "stop message" || bad "no stop message: $(cat r1.log)"
[ ! -e r/epochs.csv ] && ok "no results after the interruption" || bad "results written after an interruption"
ls r/checkpoints/*.ckpt > /dev/null 2>&1 && ok "checkpoints written" || bad "no checkpoints"
[ -z "$(ls -A r/checkpoints | grep -e '\.tmp$' -e '^\.fp8emu-')" ] && ok "no temporary files" || bad "temporary checkpoint left behind"
"$study" "${short[@]}" --threads 2 --out r --resume > r2.log 2>&1 || bad "resumed run failed: $(tail -3 r2.log)"
if same_numbers t1 r; then ok "resumed run equals the uninterrupted one"; else bad "resumed run differs"; fi

# 3. Outputs of a complete run.
for f in report.md summary.json epochs.csv steps.csv quant_stats.csv plots.gp; do
  [ -s "t1/$f" ] && ok "t1/$f written" || bad "t1/$f missing"
done
python3 -c "import json,sys; d=json.load(open('t1/summary.json')); assert len(d['recipes'])==4, d; assert len(d['recipes'][0]['test_accuracy_pct'])==2" \
  && ok "summary.json parses" || bad "summary.json"
[ "$(wc -l < t1/epochs.csv)" -eq $((1 + 4 * 2 * 2)) ] && ok "epochs.csv rows" || bad "epochs.csv has $(wc -l < t1/epochs.csv) lines"
[ "$(wc -l < t1/steps.csv)" -eq $((1 + 4 * 2 * 2 * 12)) ] && ok "steps.csv rows" || bad "steps.csv has $(wc -l < t1/steps.csv) lines"
grep -q "^fp8-hybrid-delayed,1,3,0,fprop,a,input," t1/quant_stats.csv && ok "quant_stats rows" || bad "quant_stats.csv"
grep -q "## Prediction and measurement" t1/report.md && grep -q "Literature: Matches the BF16 baseline" t1/report.md \
  && ok "report has predictions" || bad "report.md"
grep -q "^fp8-e4m3-blockwise " t1.log && ok "results table printed" || bad "no table: $(cat t1.log)"
if command -v gnuplot > /dev/null; then
  "$study" --recipes fp32,fp8-unscaled --seeds 1 --epochs 1 --train-limit 512 --test-limit 200 --progress lines \
    --out p > p.log 2>&1 || bad "plot run failed"
  [ -s p/loss.png ] && [ -s p/accuracy.png ] && ok "plots written" || bad "no plots: $(cat p.log)"
  grep -q "epoch 1/1" p.log && ok "progress lines" || bad "no progress lines"
fi

# The convolutional network trains and reports.
"$study" --model cnn --recipes fp8-hybrid-current --seeds 1 --epochs 1 --train-limit 512 --test-limit 200 \
  --progress none --no-plots --out c > c.log 2>&1 && grep -q "^fp8-hybrid-current " c.log \
  && grep -q "conv0 1->16 k3" c/report.md && ok "cnn runs" || bad "cnn: $(cat c.log)"

# 4. Bad input: exit 2, a message, no results.
expect_error() {  # message-pattern args...
  local pattern=$1; shift
  rm -rf e
  "$study" --out e --progress none --no-plots "$@" > e.log 2>&1
  local rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$pattern" e.log && [ ! -e e/epochs.csv ]; then ok "error: $*"
  else bad "error case '$*': exit $rc, output: $(cat e.log)"; fi
}
expect_error "unknown recipe 'fp9'" --recipes fp9
expect_error "unknown recipe key 'weights.format'" --set weights.format=e4m3fn
expect_error "apt-get install dataset-fashion-mnist" --data /nonexistent
expect_error "epochs: '0' must be" --epochs 0
expect_error "unknown option '--fast'" --fast
expect_error "smaller than one batch" --train-limit 10
expect_error "given twice" --recipes fp32,fp32
printf 'base = fp32\nmaster = bf17\n' > bad.recipe
expect_error "bad.recipe:2: format 'bf17'" --recipes bad.recipe
# A checkpoint from other settings, and a corrupt one.
expect_error "other settings" "${short[@]}" --out r --resume --lr 0.01
rm -rf e; cp -r r e
for f in e/checkpoints/*.ckpt; do head -c 100 "$f" > "$f.cut" && mv "$f.cut" "$f"; done
"$study" "${short[@]}" --out e --resume > e.log 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "truncated checkpoint" e.log && ok "truncated checkpoint" || bad "truncated checkpoint: exit $rc $(cat e.log)"
# One float of a checkpoint overwritten by 1e30: the checksum refuses it, nothing is published.
rm -rf e; cp -r r e; rm -f e/*.csv e/*.json e/*.md
ck=$(ls e/checkpoints/*.ckpt | head -1)
python3 -c "import struct,sys; p=sys.argv[1]; b=bytearray(open(p,'rb').read()); i=len(b)//8*4; b[i:i+4]=struct.pack('<f',1e30); open(p,'wb').write(b)" "$ck"
"$study" "${short[@]}" --out e --resume > e.log 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "$ck: corrupt checkpoint: checksum mismatch" e.log && [ ! -e e/epochs.csv ] \
  && ok "checkpoint with a changed float" || bad "checkpoint with a changed float: exit $rc $(cat e.log)"
# An output path that is not a regular file is refused (exit 2) and left as it is.
rm -rf f; mkdir f; mkfifo f/summary.json
"$study" --recipes fp32 --seeds 1 --epochs 1 --train-limit 512 --test-limit 200 --progress none --no-plots \
  --out f > f.log 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "'f/summary.json' is a FIFO, not a regular file" f.log && [ -p f/summary.json ] \
  && ok "a FIFO in the results directory" || bad "a FIFO in the results directory: exit $rc $(cat f.log)"

echo "$checks checks, $fails failed"
[ $fails -eq 0 ]
