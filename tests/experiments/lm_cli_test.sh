#!/usr/bin/env bash
# fp8lm on a tiny model and a small UTF-8 text: the outputs of a complete run are all there
# and parse, with every recipe in the table; the same numbers whatever the thread count; an
# interrupted and resumed study ends with the numbers of an uninterrupted one; bad input
# exits 2 with a clear message and no results.
# Usage: lm_cli_test.sh FP8LM WORKDIR
set -uo pipefail
lm=$1
work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fails=0
checks=0
ok() { checks=$((checks + 1)); echo "ok: $1"; }
bad() { checks=$((checks + 1)); fails=$((fails + 1)); echo "FAIL: $1"; }

# A small text with 2-, 3- and 4-byte characters: 40 lines of 26 words of 3 to 6 letters.
{
  for i in $(seq 1 40); do
    line=""
    for j in $(seq 1 26); do
      case $(( (i * 7 + j * 3) % 9 )) in
        0) w="caf\xc3\xa9" ;; 1) w="the" ;; 2) w="\xce\xbb\xcf\x8c\xce\xb3\xce\xbf\xcf\x82" ;; 3) w="and" ;;
        4) w="earth" ;; 5) w="\xe2\x82\xac5" ;; 6) w="light" ;; 7) w="\xf0\x9d\x84\x9e" ;; *) w="waters" ;;
      esac
      line="$line$w "
    done
    printf "$line\n"
  done
} > small.txt
recipes=fp32,fp8-hybrid-delayed,mxfp8,nvfp4
tiny=(--data small.txt --recipes $recipes --seeds 2 --iters 12 --eval-every 4 --eval-batches 2 --layers 2
      --heads 2 --width 16 --context 16 --batch 4 --warmup 2 --log-every 2 --progress none --no-plots)
same_numbers() {  # dir1 dir2: every file without wall times (all but timings.json) is byte for byte the same
  for f in evals.csv steps.csv layer_stats.csv summary.json report.md; do
    cmp -s "$1/$f" "$2/$f" || return 1
  done
}

# 1. Outputs of a complete run.
"$lm" "${tiny[@]}" --threads 1 --out t1 > t1.log 2>&1 || bad "threads 1 run failed: $(tail -3 t1.log)"
for f in report.md summary.json evals.csv steps.csv layer_stats.csv plots.gp timings.json; do
  [ -s "t1/$f" ] && ok "t1/$f written" || bad "t1/$f missing"
done
# The text as the program read it: bytes, code points, distinct code points (Python's count).
python3 - small.txt t1/summary.json << 'PY' && ok "summary.json parses and counts the text's characters" || bad "summary.json"
import json, math, sys
text = open(sys.argv[1], encoding="utf-8").read()
raw = open(sys.argv[1], "rb").read()
d = json.load(open(sys.argv[2]))
assert d["bytes"] == len(raw) and d["characters"] == len(text) and len(raw) > len(text), (d["bytes"], d["characters"])
assert d["vocabulary"] == len(set(text)), d["vocabulary"]
assert d["val_characters"] == len(text) // 10 and d["train_characters"] == len(text) - len(text) // 10
assert [r["name"] for r in d["recipes"]] == ["fp32", "fp8-hybrid-delayed", "mxfp8", "nvfp4"], d["recipes"]
for r in d["recipes"]:
    assert len(r["val_loss"]) == 2, r
    assert abs(r["bits_per_char"] - r["mean"] / math.log(2)) < 1e-6 * r["bits_per_char"], r
    assert r["prediction"], r["name"]
base = d["recipes"][0]["mean"]
for r in d["recipes"][1:]:
    assert abs(r["vs_fp32_pct"] - 100 * (r["mean"] - base) / base) < 1e-6, r
    assert r["underflow_pct"] is not None and r["max_amax"] > 0, r
assert d["recipes"][0]["vs_fp32_pct"] is None and d["recipes"][0]["max_amax"] is None
PY
# 2 seeds x 4 recipes x evaluations at 4, 8, 12; 12 steps each; stats rows every 2 steps.
[ "$(wc -l < t1/evals.csv)" -eq $((1 + 4 * 2 * 3)) ] && ok "evals.csv rows" || bad "evals.csv has $(wc -l < t1/evals.csv) lines"
[ "$(wc -l < t1/steps.csv)" -eq $((1 + 4 * 2 * 12)) ] && ok "steps.csv rows" || bad "steps.csv has $(wc -l < t1/steps.csv) lines"
grep -q "^fp8-hybrid-delayed,1,2,0,h0.attn.qkv,fprop,a,input," t1/layer_stats.csv && ok "layer_stats rows name the layer" \
  || bad "layer_stats.csv: $(head -3 t1/layer_stats.csv)"
grep -q ",head,wgrad,b,input," t1/layer_stats.csv && ok "layer_stats has the head's wgrad" || bad "no head rows"
for r in ${recipes//,/ }; do
  grep -q "^$r " t1.log && ok "table has $r" || bad "no table row for $r: $(cat t1.log)"
done
grep -q "## Prediction and measurement" t1/report.md && grep -q "Literature: Matches the 16-bit baseline: GPT models" t1/report.md \
  && grep -q "arXiv 2509.25149" t1/report.md && ok "report has predictions" || bad "report.md"
python3 -c "import json; d=json.load(open('t1/timings.json')); assert d['threads'] == 1 and len(d['runs']) == 8, d" \
  && ok "timings.json has the thread plan and every run" || bad "timings.json: $(cat t1/timings.json)"
grep -q "small.txt: $(wc -c < small.txt) bytes" t1.log && ok "the check of what was read is printed" || bad "no data line"

# 2. Threads: 1 and 2 (two runs at once), and one run alone on 2 threads.
"$lm" "${tiny[@]}" --threads 2 --out t2 > t2.log 2>&1 || bad "threads 2 run failed"
if same_numbers t1 t2; then ok "1 and 2 threads give the same numbers"; else bad "1 and 2 threads differ"; fi
one=(--data small.txt --recipes nvfp4 --seeds 1 --iters 6 --eval-every 3 --eval-batches 2 --layers 1 --heads 2
     --width 32 --context 16 --batch 4 --progress none --no-plots)
"$lm" "${one[@]}" --threads 1 --out o1 > o1.log 2>&1 || bad "single run, 1 thread, failed"
"$lm" "${one[@]}" --threads 2 --out o2 > o2.log 2>&1 || bad "single run, 2 threads, failed"
if same_numbers o1 o2; then ok "one run on 1 and 2 threads gives the same numbers"; else bad "one run differs with 2 threads"; fi
if cmp -s <(grep '^fp32,1,' t1/evals.csv | cut -d, -f3-) <(grep '^fp32,2,' t1/evals.csv | cut -d, -f3-); then
  bad "seeds 1 and 2 gave identical results"; else ok "seeds 1 and 2 differ"; fi

# 3. Resume: stop after the first evaluation, then --resume: the numbers of t1.
"$lm" "${tiny[@]}" --threads 2 --out r --stop-after-eval 1 > r1.log 2>&1 || bad "interrupted run failed"
grep -q "stopped after evaluation 1" r1.log && ok "stop message" || bad "no stop message: $(cat r1.log)"
[ ! -e r/evals.csv ] && ok "no results after the interruption" || bad "results written after an interruption"
[ "$(ls r/checkpoints/*.ckpt 2> /dev/null | wc -l)" -eq 8 ] && ok "a checkpoint per run" || bad "checkpoints: $(ls r/checkpoints)"
"$lm" "${tiny[@]}" --threads 2 --out r --resume --progress lines > r2.log 2>&1 || bad "resumed run failed: $(tail -3 r2.log)"
if same_numbers t1 r; then ok "resumed run equals the uninterrupted one"; else bad "resumed run differs"; fi
# It did resume: every run went on from iteration 4 (8 runs, evaluations at 8 and 12 only).
[ "$(grep -c "iteration 8/12" r2.log)" -eq 8 ] && ! grep -q "iteration 4/12" r2.log && ok "the runs went on from their checkpoints" \
  || bad "the resumed runs started again: $(grep iteration r2.log | head -3)"

# 4. Plots.
if command -v gnuplot > /dev/null; then
  "$lm" --data small.txt --recipes fp32,bf16,fp8-hybrid-delayed --seeds 1 --iters 6 --eval-every 3 --eval-batches 2 \
    --layers 1 --heads 2 --width 32 --context 16 --batch 4 --log-every 2 --progress lines --out p > p.log 2>&1 || bad "plot run failed"
  [ -s p/val_loss.png ] && [ -s p/train_loss.png ] && [ -s p/layer_amax.png ] && ok "plots written" || bad "no plots: $(cat p.log)"
  grep -q "iteration 6/6" p.log && ok "progress lines" || bad "no progress lines"
fi

# 4b. A run that diverges is reported, not a crash (lr 1000 without clipping).
"$lm" --data small.txt --recipes fp32,fp8-hybrid-delayed --seeds 1 --iters 12 --eval-every 4 --eval-batches 2 \
  --layers 1 --heads 2 --width 16 --context 16 --batch 4 --warmup 0 --lr 1000 --grad-clip 0 --progress none \
  --no-plots --out dv > dv.log 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "^fp8-hybrid-delayed .*diverged (1 of 1 seeds)" dv.log && grep -q "warning: 2 runs diverged" dv.log \
  && python3 -c "import json; d=json.load(open('dv/summary.json')); assert all(r['diverged'] for r in d['recipes'])"; then
  ok "diverged runs are reported"; else bad "diverged runs: exit $rc $(cat dv.log)"; fi

# 5. Bad input: exit 2, a message, no results.
expect_error() {  # message-pattern args...
  local pattern=$1; shift
  rm -rf e
  "$lm" --out e --progress none --no-plots "$@" > e.log 2>&1
  local rc=$?
  if [ $rc -eq 2 ] && grep -q -- "$pattern" e.log && [ ! -e e/evals.csv ]; then ok "error: $*"
  else bad "error case '$*': exit $rc, output: $(cat e.log)"; fi
}
expect_error "unknown option '--fast'" --data small.txt --fast
expect_error "iters: '0' must be a number" --data small.txt --iters 0
expect_error "lr: 'x' must be a number" --data small.txt --lr x
expect_error "unknown recipe 'fp9'" --data small.txt --recipes fp9
expect_error "unknown recipe key 'weights.format'" --data small.txt --set weights.format=e4m3fn
expect_error "nothere.txt: no such file; prepare the King James Bible with bash tools/run.sh main" --data nothere.txt
# 58 good bytes (one of them a 3-byte character), then a lead byte whose next byte is no continuation.
{ printf 'In the beginning God created the heaven and the earth \xe2\x80\x94 '; printf '\xc3\x28 And the earth was without form, and void; and darkness was upon the face of the deep.'; } > bad.txt
expect_error "bad.txt: invalid UTF-8 at byte 58 (a sequence cut short by a byte that is not a continuation byte" --data bad.txt
: > empty.txt
expect_error "empty.txt: 0 characters (an empty file)" --data empty.txt
expect_error "is not a multiple of --heads" --data small.txt --width 30 --heads 4
expect_error "fewer than one window" --data small.txt --context 2000
expect_error "other settings" "${tiny[@]}" --out r --resume --lr 0.01
[ -n "$(ls nothere.txt 2> /dev/null)" ] && bad "a missing data file was created" || ok "the missing data file is not created"

"$lm" --version | grep -q "^fp8lm " && ok "--version" || bad "--version"
"$lm" --help | grep -q -- "--stop-after-eval" && ok "--help" || bad "--help"

echo "$checks checks, $fails failed"
[ $fails -eq 0 ]
