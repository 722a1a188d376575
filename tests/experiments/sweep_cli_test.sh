#!/usr/bin/env bash
# fp8lm --sweep on a tiny grid (2 keys x 2 values, 2 recipes, 1 seed, a tiny model, 6
# iterations): every run's directory is what a single fp8lm run of its point writes; the
# same files on 1 or 2 threads, from --sweep or a sweep file, and (with MPIRUN) on 2 and 4
# ranks; --resume reruns only an incomplete run; bad keys and values exit 2 and write
# nothing; a failing or killed run ends the sweep with no report.
# Usage: sweep_cli_test.sh FP8LM WORKDIR [MPIRUN]
#   MPIRUN: the build's tests/mpi/mpirun.sh launcher (`MPIRUN NP COMMAND...`): the checks
#   under mpirun instead of the one-process ones (exit 77 when MPI is not built).
set -uo pipefail
checks_dir=$(cd "$(dirname "$0")" && pwd)
exp=$1
work=$2
mpirun=${3-}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$checks_dir/findings_checks.sh"

for i in $(seq 1 60); do echo "In the beginning God created the heaven and the earth, $i times; and it was good."; done > small.txt
base=(--data small.txt --recipes fp32,fp8-hybrid-delayed --seeds 1 --iters 6 --eval-every 3 --eval-batches 2
      --layers 1 --heads 2 --width 16 --context 16 --batch 4 --warmup 2 --log-every 2 --no-plots)
grid=(--sweep lr=0.001,0.003 --sweep fprop.a.format=e4m3,e5m2)
runs="lr=0.001_fprop.a.format=e4m3 lr=0.001_fprop.a.format=e5m2 lr=0.003_fprop.a.format=e4m3 lr=0.003_fprop.a.format=e5m2"
same() {  # dir1 dir2: every file but the wall times and the lock the same, byte for byte
  diff -r -x timings.csv -x .fp8lm.lock "$1" "$2" > diff.out
}

# The reference: one process, 2 threads (2 runs at once).
"$exp" "${base[@]}" "${grid[@]}" --threads 2 --progress lines --out s1 > s1.log 2>&1 || bad "the sweep failed: $(tail -3 s1.log)"

if [ -n "$mpirun" ]; then
  # 2. Under mpirun: 2 and 4 ranks of 1 thread give the reference's files.
  "$mpirun" 2 true > probe.log 2>&1
  if [ $? -eq 77 ]; then cat probe.log; exit 77; fi
  for np in 2 4; do
    "$mpirun" $np "$exp" "${base[@]}" "${grid[@]}" --threads 1 --progress lines --out m$np > m$np.log 2>&1 \
      || bad "$np ranks: exit $?: $(tail -5 m$np.log)"
    same s1 m$np && ok "$np ranks write the files of one process" || bad "$np ranks differ: $(head -5 diff.out)"
    grep -q "to train on $np ranks (mpi" m$np.log && ok "$np ranks: the sweep says it runs on $np MPI ranks" \
      || bad "$np ranks: $(grep sweep: m$np.log)"
    [ "$(cut -d, -f2 m$np/timings.csv | grep -c '^[1-9]')" -ge 1 ] && ok "$np ranks: runs on the other ranks" \
      || bad "$np ranks: every run on rank 0: $(cat m$np/timings.csv)"
  done
  # A bad value: exit 2, rank 0 says it once, nothing written.
  exp_saved=$exp
  exp_np2() { "$mpirun" 2 "$exp_saved" "$@"; }
  exp=exp_np2
  expect_bad "--sweep lr=x: --lr: 'x' must be a number" "${base[@]}" --sweep lr=x --out badout
  exp=$exp_saved
  [ "$(grep -c "must be a number" bad.err)" -eq 1 ] && ok "2 ranks: one message" || bad "2 ranks: $(cat bad.err)"
  # A run that fails on rank 1 (its temporary directory is missing): exit non-zero, rank 0
  # names the run and the rank, no report; the complete runs stay.
  # rank1.sh runs fp8lm, on rank 1 as RANK1 says: notmp (no temporary directory), nodata
  # (in a directory without the text), kill (its process id in rank1.pid).
  cat > rank1.sh << EOF
#!/usr/bin/env bash
if [ "\${OMPI_COMM_WORLD_RANK:-\${PMIX_RANK:-\${PMI_RANK:-0}}}" = 1 ]; then
  case \$RANK1 in
    notmp) export TMPDIR=$PWD/nowhere ;;
    nodata) mkdir -p elsewhere && cd elsewhere || exit 1 ;;
    kill) echo \$\$ > rank1.pid ;;
  esac
fi
exec "$exp" "\$@"
EOF
  RANK1=nodata "$mpirun" 2 bash rank1.sh "${base[@]}" "${grid[@]}" --threads 1 --out "$PWD/nd" > nd.log 2>&1
  rc=$?
  [ $rc -eq 2 ] && grep -q "^fp8lm: rank 1: --sweep lr=0.001, fprop.a.format=e4m3: small.txt: no such file" nd.log && [ ! -e nd ] \
    && ok "the text missing on rank 1: exit 2, rank 0 says so, nothing written" || bad "no text on rank 1: exit $rc: $(cat nd.log)"
  RANK1=notmp "$mpirun" 2 bash rank1.sh "${base[@]}" "${grid[@]}" --threads 1 --out f > f.log 2>&1
  rc=$?
  [ $rc -ne 0 ] && grep -q "fp8lm: error: run runs/.* failed on rank 1: .*temp_directory_path" f.log && [ ! -e f/report.md ] && [ ! -e f/sweep.csv ] \
    && ok "a run failing on rank 1: exit $rc, named, no report" || bad "failing rank: exit $rc, report: $(ls f), $(cat f.log)"
  # Rank 1 killed (SIGKILL) while training: mpirun ends the job, exit non-zero, no report.
  slow=(--data small.txt --recipes fp32,fp8-hybrid-delayed --seeds 4 --iters 400 --eval-every 400 --eval-batches 2
        --layers 1 --heads 2 --width 16 --context 16 --batch 4 --no-plots --threads 1)
  RANK1=kill "$mpirun" 2 bash rank1.sh "${slow[@]}" "${grid[@]}" --out k > k.log 2>&1 &
  job=$!
  for _ in $(seq 1 100); do [ -s rank1.pid ] && break; sleep 0.1; done
  sleep 1
  [ -s rank1.pid ] && kill -9 "$(cat rank1.pid)"
  wait $job
  rc=$?
  [ -s rank1.pid ] && [ $rc -eq 137 ] && [ ! -e k/report.md ] && [ ! -e k/sweep.csv ] && ok "rank 1 killed: exit $rc, no report" \
    || bad "killed rank: exit $rc, $(ls k), $(tail -5 k.log)"
  grep -m2 -i "signal\|killed\|exited" k.log
  echo "$fails failed"
  [ $fails -eq 0 ]
  exit
fi

# 1. One process. Every run's directory, a file list written last, and the whole grid in
# sweep.csv, in the order of the keys.
[ "$(ls -d s1/runs/*/*/seed-1 | wc -l)" -eq 8 ] && ok "8 run directories" || bad "runs: $(ls -R s1/runs | head)"
for p in $runs; do
  for r in fp32 fp8-hybrid-delayed; do
    [ -s "s1/runs/$p/$r/seed-1/files.txt" ] || bad "no s1/runs/$p/$r/seed-1/files.txt"
  done
done
[ "$(wc -l < s1/sweep.csv)" -eq 9 ] && head -1 s1/sweep.csv | grep -q "^lr,fprop.a.format,recipe,seed," \
  && sed -n 2p s1/sweep.csv | grep -q "^0.001,e4m3,fp32,1,6," && ok "sweep.csv" || bad "sweep.csv: $(cat s1/sweep.csv)"
[ "$(awk -F, '{print NF}' s1/sweep.csv | sort -u)" = 10 ] && grep -q ",runs/lr=0.003_fprop.a.format=e5m2/fp32/seed-1$" s1/sweep.csv \
  && ok "sweep.csv: 10 fields a row, the run's directory last" || bad "sweep.csv fields: $(cat s1/sweep.csv)"
grep -q "| 0.003 | e5m2 | fp8-hybrid-delayed | " s1/report.md && ok "report.md has every point" || bad "report.md"
# A recipe key leaves the fp32 baseline as it is (as --set does); the learning rate does not.
cmp -s "s1/runs/lr=0.001_fprop.a.format=e4m3/fp32/seed-1/evals.csv" "s1/runs/lr=0.001_fprop.a.format=e5m2/fp32/seed-1/evals.csv" \
  && ok "fp32 is the same for both formats" || bad "fp32 changed with the format"
cmp -s "s1/runs/lr=0.001_fprop.a.format=e4m3/fp8-hybrid-delayed/seed-1/evals.csv" \
  "s1/runs/lr=0.001_fprop.a.format=e5m2/fp8-hybrid-delayed/seed-1/evals.csv" && bad "the format changed nothing" \
  || ok "the format changes fp8-hybrid-delayed"
cmp -s "s1/runs/lr=0.001_fprop.a.format=e4m3/fp32/seed-1/evals.csv" "s1/runs/lr=0.003_fprop.a.format=e4m3/fp32/seed-1/evals.csv" \
  && bad "lr changed nothing" || ok "lr changes fp32"

# A run's directory is what one fp8lm run of its point writes (its checkpoints aside).
"$exp" "${base[@]}" --recipes fp8-hybrid-delayed --lr 0.003 --set fprop.a.format=e5m2 --threads 1 --out one > one.log 2>&1 \
  || bad "the single run failed"
diff -r -x checkpoints -x .fp8lm.lock -x timings.json -x files.txt one "s1/runs/lr=0.003_fprop.a.format=e5m2/fp8-hybrid-delayed/seed-1" > diff.out \
  && ok "a run's directory is a single run's outputs" || bad "a run differs from fp8lm's single run: $(head -5 diff.out)"
"$exp" "${base[@]}" --recipes fp32 --lr 0.001 --threads 1 --out one32 > one32.log 2>&1 || bad "the single fp32 run failed"
diff -r -x checkpoints -x .fp8lm.lock -x timings.json -x files.txt one32 "s1/runs/lr=0.001_fprop.a.format=e5m2/fp32/seed-1" > diff.out \
  && ok "a baseline run's directory is a single run's outputs (no --set)" || bad "fp32 differs: $(head -5 diff.out)"

# The same sweep on 1 thread, from a sweep file with comments and blanks: the same files.
printf '# the grid\nlr = 0.001,0.003\n\n  fprop.a.format=e4m3, e5m2   # the forward input\n' > grid.txt
"$exp" "${base[@]}" --sweep-file grid.txt --threads 1 --progress none --out s2 > s2.log 2>&1 || bad "the sweep file failed: $(cat s2.log)"
same s1 s2 && ok "1 thread and a sweep file give the same files" || bad "s1 and s2 differ: $(head -5 diff.out)"

# 2. --resume: a run whose list is gone (unfinished) and one whose directory is gone are
# trained again, and no other.
cp -r s1 r
rm "r/runs/lr=0.003_fprop.a.format=e4m3/fp32/seed-1/files.txt"
rm -r "r/runs/lr=0.001_fprop.a.format=e5m2/fp8-hybrid-delayed"
"$exp" "${base[@]}" "${grid[@]}" --threads 2 --progress lines --resume --out r > r.log 2>&1 || bad "resume failed: $(cat r.log)"
[ "$(grep -c "^fp8lm: \[" r.log)" -eq 2 ] && grep -q "\[./2\] runs/lr=0.003_fprop.a.format=e4m3/fp32/seed-1:" r.log \
  && grep -q "\[./2\] runs/lr=0.001_fprop.a.format=e5m2/fp8-hybrid-delayed/seed-1:" r.log \
  && ok "--resume trains the 2 incomplete runs only" || bad "resume trained: $(grep '^fp8lm: \[' r.log)"
[ "$(grep -c "complete before" r/timings.csv)" -eq 6 ] && ok "timings.csv: 6 runs complete before" || bad "$(cat r/timings.csv)"
same s1 r && ok "the resumed sweep has the files of the first" || bad "resumed sweep differs: $(head -5 diff.out)"

# A complete run of other options is refused, before any run.
"$exp" "${base[@]}" "${grid[@]}" --iters 5 --progress none --resume --out r > ro.log 2>&1
rc=$?
[ $rc -eq 2 ] && grep -q "files.txt: the run of other options (fp8lm .* --iters 6 .*), not fp8lm .* --iters 5 .*: remove it" ro.log \
  && same s1 r && ok "--resume refuses runs of other options" || bad "resume with other options: exit $rc: $(cat ro.log)"
head -1 "r/runs/lr=0.003_fprop.a.format=e5m2/fp32/seed-1/files.txt" | grep -q "^# fp8lm --data small.txt .* --lr 0.003 --recipes fp32 --seeds 1 --first-seed 1 --out DIR$" \
  && ok "files.txt has the run's command line" || bad "files.txt: $(head -1 "r/runs/lr=0.003_fprop.a.format=e5m2/fp32/seed-1/files.txt")"

# 3. Bad keys and values: exit 2 before any run, a message naming the key, nothing written.
small=("${base[@]}" --out badout)
expect_bad "unknown recipe key 'lrr'" "${small[@]}" --sweep lrr=1,2
expect_bad "^fp8lm: --sweep lr=x: --lr: 'x' must be a number" "${small[@]}" --sweep lr=0.001,x
expect_bad "--sweep fprop.a.format=e9m9: .*e9m9" "${small[@]}" --sweep fprop.a.format=e4m3,e9m9
expect_bad "key 'lr': an empty value" "${small[@]}" --sweep lr=
expect_bad "key 'lr': an empty value" "${small[@]}" --sweep lr=0.1,,0.2
expect_bad "the value '0.1' is given twice" "${small[@]}" --sweep lr=0.1,0.2,0.1
expect_bad "key 'lr' given twice" "${small[@]}" --sweep lr=0.1 --sweep lr=0.2
expect_bad "key 'lr' is also given as --lr" "${small[@]}" --lr 0.1 --sweep lr=0.2
expect_bad "'seeds' is a setting of the whole sweep" "${small[@]}" --sweep seeds=1,2
expect_bad "--untied-head takes no value" "${small[@]}" --sweep untied-head=1
expect_bad "expected KEY=V1,V2" "${small[@]}" --sweep lr
expect_bad "52500 points x 2 recipes x 1 seeds is more than 100000 runs" "${small[@]}" --sweep mlp=$(seq -s, 1 50) \
  --sweep stats-every=$(seq -s, 1 50) --sweep dropout=$(seq -s, 0.01 0.01 0.21)
expect_bad "--sweep context=2000: the validation tokens (491) are fewer than one window" \
  "${small[@]/--context/--mlp}" --sweep context=16,2000
expect_bad "a recipe key changes no recipe" "${small[@]}" --recipes fp32 --sweep fprop.a.format=e4m3
printf '#\nlr=0.001,y\n' > badgrid.txt
expect_bad "^fp8lm: --sweep lr=y: --lr: 'y' must be a number" "${small[@]}" --sweep-file badgrid.txt
expect_bad "nogrid.txt: cannot read it" "${small[@]}" --sweep-file nogrid.txt

# 4. A run that fails (its temporary directory is missing): exit 1, the run and rank named,
# the earlier sweep's report and table left as they were.
cp -r s1 f
TMPDIR=$PWD/nowhere "$exp" "${base[@]}" "${grid[@]}" --threads 1 --progress none --out f > f.log 2>&1
rc=$?
[ $rc -eq 1 ] && grep -q "^fp8lm: error: run runs/lr=0.001_fprop.a.format=e4m3/fp32/seed-1 failed on rank 0: .*temp_directory_path" f.log \
  && ok "a failing run: exit 1, the run and the rank named" || bad "failing run: exit $rc: $(cat f.log)"
cmp -s s1/report.md f/report.md && cmp -s s1/sweep.csv f/sweep.csv && ok "the earlier report is untouched" || bad "report changed"

# A sweep killed (SIGKILL) after its first runs: no report; --resume goes on from the
# complete runs.
"$exp" "${base[@]}" "${grid[@]}" --iters 100 --eval-every 100 --threads 1 --progress lines --out k > k.log 2>&1 &
job=$!
for _ in $(seq 1 300); do grep -q '^fp8lm: \[1/8\]' k.log && break; sleep 0.1; done
kill -9 $job
wait $job
rc=$?
[ $rc -eq 137 ] && [ ! -e k/report.md ] && [ ! -e k/sweep.csv ] && ok "killed: exit 137, no report" || bad "killed: exit $rc, $(ls k)"
done_before=$(ls k/runs/*/*/seed-1/files.txt 2> /dev/null | wc -l)
"$exp" "${base[@]}" "${grid[@]}" --iters 100 --eval-every 100 --threads 2 --progress none --resume --out k > k2.log 2>&1 \
  || bad "resume after the kill failed: $(cat k2.log)"
[ "$done_before" -ge 1 ] && [ "$(grep -c "complete before" k/timings.csv)" -eq "$done_before" ] && [ -s k/report.md ] \
  && ok "resumed after the kill: $done_before runs kept" || bad "after the kill: $done_before kept, $(cat k/timings.csv)"

echo "$fails failed"
[ $fails -eq 0 ]
