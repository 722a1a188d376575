# Sourced by the fp8exp test scripts (tests/experiments/*_cli_test.sh) once `exp` (the
# program) is set and the working directory is the scratch one: `ok NAME` and `bad NAME`
# print a check's result (`fails` counts the failures, the script's exit status), and
# `expect_bad REGEX ARGS...` runs the program with ARGS and checks that it exits 2 with
# REGEX on stderr and leaves no directory badout behind.
fails=0
ok() { echo "ok: $1"; }
bad() { fails=$((fails + 1)); echo "FAIL: $1"; }
expect_bad() {
  local regex=$1; shift
  rm -rf badout
  "$exp" "$@" > bad.out 2> bad.err; local rc=$?
  [ $rc -eq 2 ] && grep -q -- "$regex" bad.err && ok "bad: $* (exit 2, $regex)" ||
    bad "bad: $* gave $rc: $(cat bad.err)"
  [ ! -e badout ] || bad "bad: $* left badout"
}
