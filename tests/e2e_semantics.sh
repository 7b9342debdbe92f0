#!/bin/sh
# End to end: options whose meaning could change a run's results without a
# word are refused or say what they do. A changed --epochs on resume of a
# length-shaped decay (refused; --extend accepts and says what the schedule
# becomes), ...
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

small="--data fashion-mnist --model 784-64-10 --train-samples 4096 --test-samples 500
  --batch-size 512 --log-every 1 --quiet"

# The rate of step $2 in the metrics of run $1.
lr_at() {
  grep '"kind":"train"' "$1/metrics.jsonl" | grep "\"step\":$2," | sed -n 's/.*"lr":\([^,}]*\).*/\1/p'
}

# 1. --epochs on resume: a finished 2-epoch cosine run resumed with --epochs 3
"$DDTRAIN" train --run-dir "$work/len" $small --lr-decay cosine --epochs 2 2>/dev/null ||
  fail "the 2-epoch cosine run failed"
set +e
"$DDTRAIN" train --run-dir "$work/len" --resume auto --epochs 3 --quiet 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] || fail "--epochs 3 on a 2-epoch cosine run: exit $status, want 2"
grep -q -- "--epochs: 3 differs from the resumed run's 2, and the cosine decay's shape depends on the length" "$work/err" ||
  { cat "$work/err" >&2; fail "--epochs on resume: the refusal does not name both values"; }
grep -q -- "--extend" "$work/err" || fail "--epochs on resume: the refusal does not mention --extend"
[ "$(grep -c '"kind":"train"' "$work/len/metrics.jsonl")" -eq 16 ] ||
  fail "a refused resume wrote to metrics.jsonl"
"$DDTRAIN" train --run-dir "$work/len" --resume auto --epochs 3 --extend --quiet 2>"$work/err" ||
  { cat "$work/err" >&2; fail "--extend: the resume failed"; }
grep -q "resume --extend: the cosine decay runs from step 16 (epoch 2.000, lr 0.025) to step 24 (the end of epoch 3, lr 0)" "$work/err" ||
  { cat "$work/err" >&2; fail "--extend does not say what the schedule becomes"; }
[ "$(lr_at "$work/len" 17)" = 0.025 ] || fail "--extend: step 17's rate is $(lr_at "$work/len" 17), want 0.025"
# a shape that does not depend on the length takes a new --epochs as before
"$DDTRAIN" train --run-dir "$work/const" $small --epochs 1 2>/dev/null || fail "the constant run failed"
"$DDTRAIN" train --run-dir "$work/const" --resume auto --epochs 2 --quiet 2>/dev/null ||
  fail "a constant-rate run resumed with another --epochs was refused"

echo "e2e_semantics: ok"
