#!/usr/bin/env bash
# A rank that fails or is killed while the others wait for it ends the whole job, with a
# non-zero exit status and a message that names the rank, well within the time limit
# (docs/distributed.md, "When a rank fails"). Each case runs test_comm --fail MODE RANK
# under the MPI test launcher and checks mpirun's exit status and output.
#   failure_test.sh MPIRUN TEST_COMM
set -u
mpirun=$1 test_comm=$2
"$mpirun" 1 true 2> /dev/null || exit $?  # 77: MPI not built, and its message
fail=0 cases=0
# expect NP MODE RANK STATUS REGEX...: the exit status and every extended regex (over the
# output joined into one line) that the job must print.
expect() {
  local np=$1 mode=$2 rank=$3 want=$4 out status
  shift 4
  cases=$((cases + 1))
  local start=$SECONDS
  out=$("$mpirun" "$np" "$test_comm" --fail "$mode" "$rank" 2>&1)
  status=$?
  local took=$((SECONDS - start))
  local flat=${out//$'\n'/ }
  local ok=1
  [[ $status -eq $want ]] || ok=0
  for re in "$@"; do [[ $flat =~ $re ]] || ok=0; done
  if [[ $ok -eq 1 ]]; then
    echo "ok: $np ranks, rank $rank $mode: exit status $status after ${took} s"
  else
    echo "FAIL: $np ranks, rank $rank $mode: exit status $status (expected $want), output:"
    echo "$out" | sed 's/^/    /'
    fail=1
  fi
}
export FP8EMU_MPI_TIMEOUT=60
# SIGKILL: mpirun reports the signal and exits with 128 + 9.
expect 2 kill 1 137 "process rank 1 with PID [0-9]+ on node [^ ]+ exited on signal 9 \(Killed\)"
expect 4 kill 0 137 "process rank 0 with PID [0-9]+ on node [^ ]+ exited on signal 9 \(Killed\)"
# Communicator::abort: the message, prefixed by the rank, and its code as the exit status.
# (mpirun's own "MPI_ABORT was invoked on rank 2" box is not checked: Open MPI 4.1.4 at
# times prints "ORTE_ERROR_LOG: Data unpack would read past end of buffer" instead.)
expect 4 abort 2 3 "rank 2: test_comm: failing on purpose"
# A non-zero exit ends the job with that status instead of waiting in MPI_Finalize.
expect 2 exit 1 4 "rank 1: exit status 4: ending the job"
# An uncaught exception: std::terminate's message, then SIGABRT.
expect 2 throw 1 134 "what\(\): +test_comm: failing on purpose" "process rank 1 .* exited on signal 6 \(Aborted\)"
# An MPI error (a message longer than the receive): MPI's error string, then MPI_Abort(1).
expect 3 truncate 1 1 "rank 2: MPI_Sendrecv failed: MPI_ERR_TRUNCATE: message truncated"
# A rank that returns 0 early is not a failure MPI can see: the others wait until the
# launcher's time limit ends the job (status 124).
FP8EMU_MPI_TIMEOUT=2 expect 2 finish 1 124 "ended after the time limit of 2 s"
echo "failure_test: $cases cases"
[[ $cases -eq 7 ]] || fail=1
exit $fail
