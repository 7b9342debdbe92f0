#!/bin/sh
# The man pages and the bash completion that docgen writes say what the
# program says: the commands of `ddtrain help`, each command's usage lines,
# a page per command that groff formats without warnings; and the completion
# completes commands, option names, enum choices and file names.
. "$(dirname "$0")/lib.sh"

docgen="$top_builddir/docgen"
[ -x "$docgen" ] || fail "no $docgen: make builds it"

# the commands of `ddtrain help`, as "name summary" lines
"$DDTRAIN" help | sed -n '/^commands:/,/^$/p' | sed -e '1d' -e '/^$/d' -e '/^  help /d' |
  sed -e 's/^ *//' -e 's/  */ /' >"$work/help"
"$docgen" commands >"$work/docs"
diff -u "$work/help" "$work/docs" >&2 ||
  fail "daemon/commands.c's commands differ from 'ddtrain help' (daemon/main.c)"

for c in $(cut -d' ' -f1 "$work/docs"); do
  # the usage lines of --help, up to the blank line before the options
  "$DDTRAIN" "$c" --help >"$work/out" 2>&1 || fail "ddtrain $c --help failed: $(cat "$work/out")"
  sed -n '1,/^$/p' "$work/out" | sed -e '/^$/d' -e 's/^usage: //' -e 's/^ *//' >"$work/usage"
  "$docgen" synopsis "$c" >"$work/synopsis"
  diff -u "$work/usage" "$work/synopsis" >&2 || fail "ddtrain $c: daemon/commands.c's synopsis differs from --help"
  # every option sits in a topic (daemon/train_options.c's train_option_groups)
  ! grep -q '^other:' "$work/out" ||
    fail "ddtrain $c --help lists options under 'other:': add them to a group: $(sed -n '/^other:/,/^$/p' "$work/out" | tr '\n' ' ')"
  # every option of --help has its entry in the page
  page="$top_builddir/man/ddtrain-$c.1"
  [ -f "$page" ] || fail "no man page $page: add $c to DOC_COMMANDS and nodist_man1_MANS in Makefile.am"
  for o in $(sed -n 's/^  --\([a-z0-9-]*\) .*/\1/p' "$work/out"); do
    grep -q "^\\\\fB\\\\-\\\\-$(printf '%s' "$o" | sed 's/-/\\\\-/g')\\\\fR" "$page" ||
      fail "$page lacks --$o"
  done
done

if command -v groff >/dev/null; then
  for page in "$top_builddir"/man/*.1; do
    groff -man -Tutf8 -ww -z "$page" >"$work/groff" 2>&1 || fail "groff failed on $page"
    [ ! -s "$work/groff" ] || fail "groff warns on $page: $(cat "$work/groff")"
  done
fi

# completion: complete_with WORD... prints the completions of the last word
completion="$top_builddir/completion/ddtrain"
complete_with() {
  bash -c '. "$0"; fn=$1; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
    "$fn"; [ ${#COMPREPLY[@]} -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"' "$completion" "$@" | sort | tr '\n' ' '
}
expect() { # expect "WANTED " FUNCTION WORD...
  want=$1
  shift
  got=$(complete_with "$@")
  [ "$got" = "$want" ] || fail "completing '$*': got '$got', expected '$want'"
}
expect "inspect interpolate " _ddtrain ddtrain in
expect "train " _ddtrain ddtrain tr
expect "--lr-decay " _ddtrain ddtrain train --lr-d
expect "adam adamw lamb lars sgd " _ddtrain ddtrain train --optimizer ""
expect "adam adamw " _ddtrain ddtrain train --optimizer = ad
expect "" _ddtrain ddtrain train --lr ""
expect "--no-json " _ddtrain ddtrain ctl --no-j
expect "checkpoint status stop " _ddtrain ddtrain ctl --run-dir x ""
expect "fashion-mnist " _ddtrain ddtrain train --data fashion-m
mkdir -p "$work/runs/a1"
: >"$work/runs/a.ckpt"
expect "$work/runs/a1 " _ddtrain ddtrain train --run-dir "$work/runs/a"
expect "$work/runs/a.ckpt $work/runs/a1 " _ddtrain ddtrain inspect "$work/runs/a"
expect "$work/runs/a.ckpt $work/runs/a1 " _ddtrain ddtrain eval --config "$work/runs/a"
expect "-np " _ddtrain_run ddtrain-run -n
expect "l2 " _ddtrain_run ddtrain-run -np 2 -- train --wd-mode l
expect "--eps " _ddtrain_run ddtrain-run -np 2 -- sharpness --ep
echo "man pages and completion agree with --help"
