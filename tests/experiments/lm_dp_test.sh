#!/usr/bin/env bash
# fp8lm's data-parallel training (--micro-batches, --ranks; under mpirun without --sweep)
# on a tiny model and text, 2 recipes, 8 iterations:
#  - float32 communication: 4 micro-batches on 1 rank, 2 and 4 simulated ranks (and, with
#    MPIRUN, 2 and 4 real ranks) train the same bits: evals.csv, steps.csv, layer_stats.csv
#    byte for byte;
#  - FP8 (e4m3fn, FP8-LM scaling) and bf16 communication: 2 real ranks write every file of
#    2 ranks simulated in one process, byte for byte, and the ring quantized values;
#  - stopped after an evaluation and resumed on 2 real ranks: the files of the whole run;
#  - bad settings exit 2 and write nothing; a rank killed mid-run ends the job, no report.
# Usage: lm_dp_test.sh FP8LM WORKDIR [MPIRUN]   (MPIRUN: the build's tests/mpi/mpirun.sh
# launcher; without it only the one-process checks; exit 77 when MPI is not built)
set -uo pipefail
checks_dir=$(cd "$(dirname "$0")" && pwd)
exp=$1
work=$2
mpirun=${3-}
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
source "$checks_dir/findings_checks.sh"

for i in $(seq 1 60); do echo "And God said, Let there be light: and there was light, $i times over."; done > small.txt
base=(--data small.txt --recipes fp32,fp8-hybrid-delayed --seeds 1 --iters 8 --eval-every 4 --eval-batches 2
      --layers 1 --heads 2 --width 16 --context 16 --batch 8 --warmup 2 --log-every 2 --no-plots
      --progress none --threads 1 --micro-batches 4)
trained() {  # dir1 dir2: the same training, byte for byte (not the report, which names R)
  for f in evals.csv steps.csv layer_stats.csv; do cmp -s "$1/$f" "$2/$f" || { echo "$f differs" > diff.out; return 1; }; done
}
everything() {  # dir1 dir2: every file but the wall times, the checkpoints (which hold them) and the lock
  diff -r -x timings.json -x checkpoints -x .fp8lm.lock "$1" "$2" > diff.out
}
run() {  # OUT ARGS...: fp8lm in one process
  local out=$1
  shift
  "$exp" "${base[@]}" "$@" --out "$out" > "$out.log" 2>&1 || bad "$out: exit $?: $(tail -3 "$out.log")"
}
quantized() {  # DIR: the values the ring quantized over the FP8 recipe's steps
  awk -F, '$1 == "fp8-hybrid-delayed" { s += $8 } END { print s + 0 }' "$1/steps.csv"
}

if [ -z "$mpirun" ]; then
  # One process: float32 on 1, 2 and 4 simulated ranks.
  run r1
  run r2 --ranks 2
  run r4 --ranks 4
  trained r1 r2 && trained r1 r4 && ok "float32: 1, 2 and 4 simulated ranks train the same bits" \
    || bad "float32 ranks differ: $(cat diff.out)"
  grep -q "each step's batch in 4 micro-batches on 2 ranks" r2/report.md && ok "the report names M and R" \
    || bad "report: $(grep -i data-parallel r2/report.md)"
  [ "$(quantized r2)" = 0 ] && ok "float32: nothing quantized" || bad "float32 quantized $(quantized r2)"
  run e2 --ranks 2 --set comm=e4m3fn
  [ "$(quantized e2)" -gt 0 ] && ! trained r2 e2 && ok "e4m3fn: the ring quantized $(quantized e2) values, other bits" \
    || bad "e4m3fn: $(quantized e2) quantized"
  # Bad settings: exit 2, nothing written.
  expect_bad "micro" "${base[@]}" --micro-batches 3 --out badout
  expect_bad "ranks" "${base[@]}" --ranks 3 --out badout
  expect_bad "comm" "${base[@]}" --set comm=e9m9 --out badout
  expect_bad "--micro-batches" "${base[@]}" --micro-batches 0 --out badout
  echo "$fails failed"
  [ $fails -eq 0 ]
  exit
fi

"$mpirun" 2 true > probe.log 2>&1
if [ $? -eq 77 ]; then cat probe.log; exit 77; fi
mpi() {  # NP OUT ARGS...: fp8lm on NP real ranks
  local np=$1 out=$2
  shift 2
  "$mpirun" "$np" "$exp" "${base[@]}" "$@" --out "$out" > "$out.log" 2>&1 || bad "$out on $np ranks: exit $?: $(tail -5 "$out.log")"
}
run r1
for np in 2 4; do
  mpi $np m$np
  trained r1 m$np && ok "float32: $np real ranks train the bits of 1" || bad "float32, $np ranks: $(cat diff.out)"
  grep -q "data-parallel training on $np ranks (mpi" m$np.log && ok "$np ranks: it says it trains on $np MPI ranks" \
    || bad "$np ranks: $(head -3 m$np.log)"
done
for comm in e4m3fn bf16; do
  run s-$comm --ranks 2 --set comm=$comm
  mpi 2 m-$comm --set comm=$comm
  everything s-$comm m-$comm && [ "$(quantized m-$comm)" -gt 0 ] \
    && ok "$comm: 2 real ranks write the files of 2 simulated ones ($(quantized m-$comm) values quantized)" \
    || bad "$comm: real and simulated differ: $(head -5 diff.out)"
done
# Stopped after the first evaluation, then resumed: the files of the uninterrupted run.
mpi 2 st --set comm=e4m3fn --stop-after-eval 1
[ ! -e st/report.md ] && mpi 2 st --set comm=e4m3fn --resume
everything m-e4m3fn st && ok "stopped and resumed on 2 ranks: the uninterrupted run's files" \
  || bad "resume differs: $(head -5 diff.out)"
# --ranks other than the job's size: exit 2, one message from rank 0, nothing written.
"$mpirun" 2 "$exp" "${base[@]}" --ranks 4 --out badr > badr.log 2>&1
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c -- "--ranks 4: the job has 2 ranks" badr.log)" -eq 1 ] && [ ! -e badr ] \
  && ok "--ranks 4 on 2 ranks: exit 2, one message, nothing written" || bad "--ranks 4 on 2 ranks: exit $rc: $(cat badr.log)"
# Rank 1 killed (SIGKILL) while training: the job ends, exit non-zero, no report.
cat > rank1.sh << EOF
#!/usr/bin/env bash
[ "\${OMPI_COMM_WORLD_RANK:-\${PMIX_RANK:-\${PMI_RANK:-0}}}" = 1 ] && echo \$\$ > rank1.pid
exec "$exp" "\$@"
EOF
"$mpirun" 2 bash rank1.sh "${base[@]}" --iters 4000 --eval-every 4000 --out k > k.log 2>&1 &
job=$!
for _ in $(seq 1 100); do [ -s rank1.pid ] && break; sleep 0.1; done
sleep 1
[ -s rank1.pid ] && kill -9 "$(cat rank1.pid)"
wait $job
rc=$?
# 137: 128 + SIGKILL, Open MPI's status for a rank killed by a signal.
[ -s rank1.pid ] && [ $rc -eq 137 ] && [ ! -e k/report.md ] && grep -q "signal 9" k.log \
  && ok "rank 1 killed: exit 137, mpirun names the signal, no report" || bad "killed rank: exit $rc, $(ls k), $(tail -5 k.log)"
echo "$fails failed"
[ $fails -eq 0 ]
