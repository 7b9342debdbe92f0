#!/bin/sh
# End to end: what the program says about itself. --early-stop leaves its
# reason in metrics.jsonl and on stderr; an optimizer option set in a
# --config file is judged as on the command line; numbers read shortest
# (0.1, not 0.10000000000000001); under mpirun an error every rank meets is
# said once, and a --data error names the option; train --help and its man
# page list the options by topic.
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
  expect_refused "$what" "$pattern" "$work/refused" \
    "$DDTRAIN" train --run-dir "$work/refused" $small --epochs 1 "$@"
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

# 3. floats as a person writes them, in config.txt, inspect and --help
grep -q '^lr = 0.05$' "$work/es/config.txt" && grep -q '^bn-eps = 1e-05$' "$work/es/config.txt" &&
  grep -q '^bn-momentum = 0.1$' "$work/es/config.txt" || fail "config.txt: $(grep -E '^(lr|bn-)' "$work/es/config.txt")"
! grep -q '000000000' "$work/es/config.txt" || fail "config.txt has long floats: $(grep 000000000 "$work/es/config.txt")"
"$DDTRAIN" inspect "$work/es" --show-config | grep -q '^lr = 0.05$' || fail "inspect --show-config: $("$DDTRAIN" inspect "$work/es" --show-config | grep '^lr')"
"$DDTRAIN" train --help | grep -q 'a number in (0, 100\]; default 0.1$' || fail "--help: $("$DDTRAIN" train --help | grep -A1 -- '--lr ')"
! "$DDTRAIN" train --help | grep -q '\.[0-9]*000000000\|e+02' || fail "--help has long floats"

# 4. under mpirun, one report of an error every rank meets; --data named
once() { # once WHAT PATTERN ARGS...: exit status non-zero, PATTERN on exactly one line
  what=$1 pattern=$2
  shift 2
  set +e
  "$RUN" -np 2 -- "$@" >/dev/null 2>"$work/err"
  status=$?
  set -e
  [ $status -ne 0 ] || fail "$what: exit 0"
  [ "$(grep -c -- "$pattern" "$work/err")" = 1 ] || fail "$what: not said once: $(cat "$work/err")"
}
once "a bad option value" "ddtrain train: --lr: '-1' is not valid" train --lr -1
once "a missing data set" "E --data: $work/none: No such file or directory" train --run-dir "$work/none-run" --data "$work/none"
once "a missing CSV" "E --data: $work/none.csv: cannot open" train --run-dir "$work/none-run" --data "$work/none.csv" --model 784-10
once "a too large batch" "E --batch-size/--batch-schedule: a global batch of 100000" train --run-dir "$work/none-run" $small --batch-size 100000
once "eval of a missing data set" "ddtrain eval: --data: $work/none: No such file or directory" eval "$work/es" --data "$work/none"
once "inspect of a missing checkpoint" "ddtrain inspect: $work/none.ckpt: cannot open" inspect "$work/none.ckpt"
[ ! -e "$work/none-run" ] || fail "a refused run wrote its run directory"

# 5. train --help by topic, each option once; its man page has the same topics
"$DDTRAIN" train --help >"$work/help"
[ "$(grep -E '^[a-z]+:$' "$work/help" | tr '\n' ' ')" = "data: model: optimizer: schedule: parallelism: checkpoints: output: " ] ||
  fail "train --help topics: $(grep -E '^[a-z]+:$' "$work/help" | tr '\n' ' ')"
[ -z "$(sed -n 's/^  --\([a-z0-9-]*\) .*/\1/p' "$work/help" | sort | uniq -d)" ] || fail "an option shows twice in --help"
sed -n '/^optimizer:$/,/^$/p' "$work/help" | grep -q '^  --lr ' || fail "--lr is not under optimizer"
page="$top_builddir/man/ddtrain-train.1"
[ "$(grep '^\.SS' "$page" | tr '\n' ' ')" = ".SS Data .SS Model .SS Optimizer .SS Schedule .SS Parallelism .SS Checkpoints .SS Output .SS Configuration file " ] ||
  fail "man page topics: $(grep '^\.SS' "$page" | tr '\n' ' ')"

echo "e2e_cli: ok"
