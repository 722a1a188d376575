#!/usr/bin/env bash
# The fenced examples of README.md and docs/*.md are the files that the tests build and
# run. A block marked on the line above with
#   <!-- example: PATH -->        must be identical to the file PATH (from the repository root);
#   <!-- example: PATH#NAME -->   to the lines of PATH between "[doc:NAME]" and "[/doc:NAME]".
# Every ```cpp block (and every ```python block of docs/python.md) must be marked, every marker must stand just above a block, and every
# program or script in docs/examples/ must be shown somewhere.
#   docs_examples_test.sh SOURCE_DIR
set -u
root=$1
cd "$root" || exit 2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail=0
checked=0
err() { echo "FAIL: $*"; fail=1; }

# Writes the text that a marker names to $2; returns 1 (with a message) if there is none.
expected_text() {
  local ref=$1 out=$2 path=${1%%#*} name=
  [[ $ref == *#* ]] && name=${ref#*#}
  if [[ ! -f $path ]]; then echo "no file $path"; return 1; fi
  if [[ -z $name ]]; then cp "$path" "$out"; return 0; fi
  awk -v b="[doc:$name]" -v e="[/doc:$name]" '
    substr($0, length($0) - length(e) + 1) == e { if (inside) { done = 1; inside = 0 }; next }
    substr($0, length($0) - length(b) + 1) == b { inside = 1; found = 1; next }
    inside { print }
    END { exit (found && done) ? 0 : 1 }' "$path" > "$out" ||
    { echo "no region [doc:$name] ... [/doc:$name] in $path"; return 1; }
}

for md in README.md docs/*.md; do
  n=0 marker= marker_line=0 inside=0 capture=0 open_line=0
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    if (( inside )); then
      if [[ $line =~ ^\ *\`\`\`\ *$ ]]; then
        inside=0
        if (( capture )); then
          capture=0
          if msg=$(expected_text "$marker" "$work/want"); then
            if cmp -s "$work/block" "$work/want"; then
              checked=$((checked + 1))
              echo "ok: $md:$open_line is $marker"
            else
              err "$md:$open_line differs from $marker:"
              diff "$work/want" "$work/block" | sed 's/^/    /'
            fi
          else
            err "$md:$marker_line: $msg"
          fi
          echo "$marker" >> "$work/used"
          marker=
        fi
      elif (( capture )); then
        printf '%s\n' "$line" >> "$work/block"
      fi
      continue
    fi
    if [[ $line =~ ^\ *\`\`\`(.*)$ ]]; then
      inside=1 open_line=$n
      lang=${BASH_REMATCH[1]}
      lang=${lang// /}
      if [[ -n $marker ]]; then
        capture=1
        : > "$work/block"
      elif [[ $lang == cpp || $lang == c++ || $lang == cxx || ($lang == python && $md == docs/python.md) ]]; then
        err "$md:$n: a \`\`\`$lang block without an <!-- example: docs/examples/FILE --> marker above it"
      fi
      continue
    fi
    if [[ -n $marker ]]; then
      err "$md:$marker_line: the example marker is not just above a fenced block"
      marker=
    fi
    if [[ $line =~ ^\<\!--\ example:\ ([^ ]+)\ --\>$ ]]; then
      marker=${BASH_REMATCH[1]} marker_line=$n
    elif [[ $line =~ ^\ *\<\!--\ *example ]]; then
      err "$md:$n: malformed example marker (expected <!-- example: PATH[#NAME] -->)"
    fi
  done < "$md"
  (( inside )) && err "$md:$open_line: a fenced block that is never closed"
  [[ -n $marker ]] && err "$md:$marker_line: the example marker is not followed by a block"
done

# Every program and script of docs/examples/ appears in the docs.
shopt -s nullglob
touch "$work/used"
for f in docs/examples/*.cpp docs/examples/*.py docs/examples/*.sh docs/examples/*.recipe docs/examples/CMakeLists.txt; do
  grep -q -e "^$f\(#.*\)\?$" "$work/used" || err "$f is not shown in README.md or docs/"
done

echo "$checked marked blocks identical to their files"
(( checked > 0 )) || err "no marked blocks found"
exit $fail
