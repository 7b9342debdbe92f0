#!/bin/sh
# End to end: what the program says about itself. --early-stop leaves its
# reason in metrics.jsonl and on stderr; an optimizer option set in a
# --config file is judged as on the command line.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

small="--data fashion-mnist --model 784-32-10 --no-bn --train-samples 500 --test-samples 200
  --batch-size 100 --quiet"

# 1. --early-stop: why the run stopped, as a metrics record and a log line
"$DDTRAIN" train --run-dir "$work/es" $small --val-fraction 0.2 --epochs 40 --lr 0.05 \
  --early-stop 1 2>"$work/es.err" || { cat "$work/es.err" >&2; fail "the --early-stop run failed"; }
rec=$(grep '"kind":"early_stop"' "$work/es/metrics.jsonl") || fail "no early_stop record: $(tail -n 3 "$work/es/metrics.jsonl")"
[ "$(tail -n 1 "$work/es/metrics.jsonl")" = "$rec" ] || fail "the early_stop record is not the last line"
step=$(json_field "$rec" step)
best_step=$(json_field "$rec" best_step)
printf '%s\n' "$rec" | grep -q "^{\"kind\":\"early_stop\",\"step\":$step,\"metric\":\"val_loss\",\"best\":[0-9.e-]*,\"best_step\":$best_step,\"best_epoch\":[0-9.]*,\"patience\":1,\"evals_since_best\":1}$" ||
  fail "early_stop record: $rec"
# the best value is the evaluation's at best_step, the epoch its epoch
ev=$(grep "\"kind\":\"eval\",\"step\":$best_step," "$work/es/metrics.jsonl")
[ "$(json_field "$ev" val_loss)" = "$(json_field "$rec" best)" ] || fail "best $(json_field "$rec" best), eval says $ev"
[ "$(json_field "$ev" epoch)" = "$(json_field "$rec" best_epoch)" ] || fail "best_epoch $(json_field "$rec" best_epoch), eval says $ev"
grep -q "early stop: val_loss has not improved for 1 evaluation (best [0-9.e-]*, epoch $(json_field "$rec" best_epoch), at step $best_step, --early-stop 1); stopping after step $step" \
  "$work/es.err" || fail "no log line: $(cat "$work/es.err")"

# 2. optimizer options in a --config file are judged as on the command line:
# --wd-mode l2 beside adamw is refused even at its default value, and a
# given --lr 0.1 does not draw the warning about SGD's default rate
refused() { # refused WHAT PATTERN ARGS...: exit 2, PATTERN on stderr, no run directory
  what=$1 pattern=$2
  shift 2
  set +e
  "$DDTRAIN" train --run-dir "$work/refused" $small --epochs 1 "$@" >/dev/null 2>"$work/err"
  status=$?
  set -e
  [ $status -eq 2 ] || fail "$what: exit $status, expected 2 ($(cat "$work/err"))"
  grep -q -- "$pattern" "$work/err" || fail "$what: $(cat "$work/err")"
  [ ! -e "$work/refused" ] || fail "$what: the refused run wrote its run directory"
}
printf 'optimizer = adamw\nwd-mode = l2   # the default\n' >"$work/adamw.cfg"
refused "--wd-mode l2 with adamw on the command line" "^ddtrain train: --wd-mode: only for --optimizer sgd, not adamw" \
  --optimizer adamw --wd-mode l2
refused "wd-mode = l2 with adamw in --config" "^ddtrain train: --wd-mode: only for --optimizer sgd, not adamw" \
  --config "$work/adamw.cfg"
printf 'optimizer = adam\nlr = 0.1\n' >"$work/adam.cfg"
"$DDTRAIN" train --run-dir "$work/adam1" $small --epochs 1 --config "$work/adam.cfg" 2>"$work/err" ||
  fail "adam with lr = 0.1 in --config failed"
! grep -q "the default chosen for SGD" "$work/err" || fail "lr = 0.1 in --config drew the default-rate warning"
printf 'optimizer = adam\n' >"$work/adam.cfg"
"$DDTRAIN" train --run-dir "$work/adam2" $small --epochs 1 --config "$work/adam.cfg" 2>"$work/err" ||
  fail "adam without --lr failed"
grep -q "the default chosen for SGD" "$work/err" || fail "adam without --lr: no warning"

echo "e2e_cli: ok"
