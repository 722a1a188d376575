#!/usr/bin/env bash
# fp8study on short runs: the same numbers whatever the thread count; an interrupted and
# resumed study ends with the numbers of an uninterrupted one; bad input exits 2 with a
# clear message and no results; the outputs of a complete run are all there.
# Usage: study_cli_test.sh FP8STUDY WORKDIR
set -uo pipefail
study=$1
work=$2
here=$(cd "$(dirname "$0")" && pwd)
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

# 5. Recipe names become file names: a name that would leave --out is refused when the
# recipe is read, before any training, and nothing is written outside --out.
quick=(--seeds 1 --epochs 1 --train-limit 256 --test-limit 100)
mkdir -p inner && printf 'base = fp32\nname = ../../escape\n' > inner/esc.recipe
(cd inner && "$study" "${quick[@]}" --recipes esc.recipe --out e --progress none --no-plots > ../esc.log 2>&1)
rc=$?
if [ $rc -eq 2 ] && grep -q "esc.recipe:2: recipe name '../../escape'" esc.log && [ -z "$(find . -name 'escape*')" ]; then
  ok "a recipe name with ../ is refused on reading"
else bad "recipe name ../../escape: exit $rc, $(cat esc.log), files: $(find . -name 'escape*')"; fi
printf 'name = a/b\n' > slash.recipe
expect_error "slash.recipe:1: recipe name 'a/b'" "${quick[@]}" --recipes slash.recipe
expect_error "recipe name '.x'" "${quick[@]}" --set name=.x
# A key or base given twice in a file, and a key given twice to --set.
printf 'base = fp32\nmaster = bf16\nmaster = fp32\n' > dup.recipe
expect_error "dup.recipe:3: key 'master' is already set on line 2" "${quick[@]}" --recipes dup.recipe
printf 'base = fp32\nbase = bf16\n' > base2.recipe
expect_error "base2.recipe:2: base is already set on line 1" "${quick[@]}" --recipes base2.recipe
expect_error "--set: key 'master' given twice" "${quick[@]}" --recipes bf16 --set master=bf16 --set master=fp32

# 6. One study at a time per results directory: a second one exits 2 naming the directory
# and leaves the first one's files alone.
mkdir -p locked
exec 9> locked/.fp8study.lock
flock -n 9 || bad "cannot take the test's own lock"
"$study" "${quick[@]}" --recipes fp32 --out locked --progress none --no-plots > lock.log 2>&1 9>&-
rc=$?
if [ $rc -eq 2 ] && grep -q "locked: another fp8study is writing here" lock.log && [ ! -e locked/epochs.csv ]; then
  ok "a locked results directory is refused"
else bad "locked results directory: exit $rc, $(cat lock.log)"; fi
exec 9>&-
"$study" "${quick[@]}" --recipes fp32 --out locked --progress none --no-plots > lock.log 2>&1 \
  && [ -s locked/epochs.csv ] && ok "the directory is usable once the lock is released" || bad "after the lock: $(cat lock.log)"

# 7. Resume with fewer epochs than the checkpoints hold: refused, naming the checkpoint.
expect_error "r/checkpoints/fp32-seed1.ckpt: 2 epochs done, more than --epochs 1" "${short[@]}" --out r --resume --epochs 1
expect_error "--out: an empty directory name" "${quick[@]}" --out ""

# 8. --version gives the project's version (CMakeLists.txt).
version=$(sed -n 's/^project(fp8emu VERSION \([0-9.]*\).*/\1/p' "$here/../../CMakeLists.txt")
[ -n "$version" ] && [ "$("$study" --version)" = "fp8study $version" ] && ok "--version" \
  || bad "--version: '$("$study" --version 2>&1)', expected fp8study $version"

# 9. A run whose loss becomes non-finite or explodes is marked diverged in the table, the
# report and summary.json, and the study still ends with exit 0 and a warning.
"$study" "${quick[@]}" --epochs 2 --recipes fp32,bf16 --optimizer sgd --lr 1000 --out dv --progress none --no-plots \
  > dv.log 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "^fp32 .*diverged" dv.log && grep -q "warning: .*diverged: fp32 seed 1" dv.log \
  && grep -q "diverged" dv/report.md \
  && python3 -c "import json; d=json.load(open('dv/summary.json')); assert all(r['diverged'] for r in d['recipes']), d"; then
  ok "diverged runs are marked"
else bad "diverged runs: exit $rc, $(cat dv.log)"; fi
python3 -c "import json; d=json.load(open('t1/summary.json')); assert not any(r['diverged'] for r in d['recipes']), d" \
  && ok "converging runs are not marked diverged" || bad "t1 marked diverged"

# 10. --set leaves the fp32 baseline alone and says which recipes it changed.
"$study" --recipes fp32,bf16 --set master=bf16 --list-recipes > set.log 2>&1
if [ "$(grep -c '^master = bfloat16' set.log)" -eq 1 ] && [ "$(grep -c '^master = float32' set.log)" -eq 1 ]; then
  ok "--set does not change the fp32 baseline"
else bad "--set and the baseline: $(grep '^master\|^#' set.log)"; fi
"$study" "${quick[@]}" --recipes fp32,fp8-hybrid-current --set master=bf16 --out st --progress none --no-plots > st.log 2>&1
if grep -q -- "--set master=bf16 changed: fp8-hybrid-current (not the fp32 baseline)" st.log \
  && grep -q -- "--set master=bf16 changed: fp8-hybrid-current" st/report.md \
  && python3 -c "import json; d=json.load(open('st/summary.json')); assert d['set']==['master=bf16'] and [r['changed_by_set'] for r in d['recipes']]==[False,True], d"; then
  ok "what --set changed is in the table, report and summary"
else bad "--set note: $(cat st.log)"; fi
expect_error "changes no recipe" "${quick[@]}" --recipes fp32 --set master=bf16
# A configuration on the scalar reference GEMM path gets a notice with an estimate; a
# fast one does not (stochastic rounding of a float32 accumulator with 32 random bits is
# one of the few left on the reference; bfloat16 operands with a matrix-unit model are not).
"$study" "${quick[@]}" --batch 16 --train-limit 16 --test-limit 16 --recipes fp32,bf16,fp8-hybrid-delayed \
  --set accumulate=fp32,rounding=sr-a --out ref --progress none --no-plots > ref.log 2>&1 || bad "reference-path run failed: $(cat ref.log)"
"$study" "${quick[@]}" --batch 16 --train-limit 16 --test-limit 16 --recipes fp32,bf16,fp8-hybrid-delayed \
  --set accumulate=nvidia-h100-fp8,promote=128 --out fast --progress none --no-plots > fast.log 2>&1 || bad "fast-path run failed: $(cat fast.log)"
if grep -q "^fp8study: note: bf16 runs .*scalar reference GEMM path.*about [0-9.]* s" ref.log \
  && grep -q "^fp8study: note: fp8-hybrid-delayed runs .*scalar reference GEMM path" ref.log \
  && ! grep -q "note: fp32" ref.log && ! grep -q "scalar reference GEMM path" fast.log; then
  ok "reference-path notice"
else bad "reference-path notice: $(cat ref.log fast.log)"; fi

# 11. Threads: no spin-waiting by default (libgomp reads the environment when it starts),
# unless the user asks for it; the plan fits the CPUs.
# OMP_DISPLAY_ENV makes libgomp print the settings it started with (fp8study may start
# twice: the last block is the one that runs).
spin=$(OMP_DISPLAY_ENV=verbose "$study" --version 2>&1 | grep GOMP_SPINCOUNT | tail -1)
[[ $spin == *"GOMP_SPINCOUNT = '0'"* ]] && ok "OpenMP threads wait passively" || bad "OpenMP spin count: $spin"
spin=$(OMP_WAIT_POLICY=active OMP_DISPLAY_ENV=verbose "$study" --version 2>&1 | grep GOMP_SPINCOUNT | tail -1)
[[ $spin == *"GOMP_SPINCOUNT = '0'"* ]] && bad "OMP_WAIT_POLICY=active is overridden: $spin" || ok "OMP_WAIT_POLICY=active is kept"
cpus=$(nproc)
plural() { [ "$1" -eq 1 ] && echo "1 $2" || echo "$1 $2s"; }
OMP_NUM_THREADS=$((cpus * 4)) "$study" "${quick[@]}" --recipes fp32 --out th --progress none --no-plots > th.log 2>&1
grep -q "threads: 1 run at a time, $(plural "$cpus" thread) each ($(plural "$cpus" CPU))" th.log && ok "default threads: the CPUs" \
  || bad "thread plan: $(cat th.log)"
"$study" "${quick[@]}" --seeds 3 --recipes fp32 --threads 2 --out th --progress none --no-plots > th.log 2>&1
grep -q "threads: 2 runs at a time, 1 thread each" th.log && ok "--threads 2 over 3 runs" || bad "thread plan: $(cat th.log)"

echo "$checks checks, $fails failed"
[ $fails -eq 0 ]
