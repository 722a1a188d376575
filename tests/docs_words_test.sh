#!/usr/bin/env bash
# The repository stands alone and its docs and comments speak of the software, not of how
# it was made: no citation of files outside the repository, and no process words.
#   docs_words_test.sh SOURCE_DIR
set -u
cd "$1" || exit 2
self=tests/docs_words_test.sh
fail=0
dirs=(README.md docs lib include sim experiments tests tools cmake web CMakeLists.txt)
search() {  # pattern, then what it means
  local hits
  hits=$(grep -r -n -I -i -E "$1" "${dirs[@]}" 2>/dev/null | grep -v "^$self:")
  if [[ -n $hits ]]; then
    echo "FAIL: $2:"; echo "$hits" | sed 's/^/    /'; fail=1
  else
    echo "ok: no $2"
  fi
}
search '\.\./shared/|shared/reference|NUMERICS\.md|RECIPES\.md' \
  "citation of a file outside the repository (cite docs/references.md or the primary source)"
# "session" as a word; the DevTools protocol's sessionId and Python's start_new_session are names.
search 'issue [0-9]|issues? #[0-9]|the issue|can_start_another|this task|(^|[^_a-z])sessions?([^_a-z]|$)' \
  "process words (issue numbers, the tracker, a tool's status)"
exit $fail
