#!/bin/sh
# End to end: the real binary trains a small MLP on a Fashion-MNIST subset
# for a few hundred steps; the loss must fall well below its start and the
# accuracy must be well above chance (0.1).
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

"$RUN" -np 1 -- train --run-dir "$work/run" --data fashion-mnist \
  --train-samples 8000 --test-samples 2000 --model 784-256-10 --bn \
  --batch-size 64 --epochs 3 --lr 0.05 --log-every 10 --quiet \
  || fail "training exited with status $?"

metrics="$work/run/metrics.jsonl"
[ -s "$metrics" ] || fail "no metrics.jsonl"
[ -s "$work/run/config.txt" ] || fail "no effective config"
grep -q '^lr = 0.05' "$work/run/config.txt" || fail "config.txt lacks the lr"

first=$(grep '"kind":"train"' "$metrics" | head -n 1)
last_eval=$(grep '"kind":"eval"' "$metrics" | tail -n 1)
nsteps=$(json_field "$(grep '"kind":"train"' "$metrics" | tail -n 1)" step)
[ "$nsteps" = 375 ] || fail "expected 375 steps (3 epochs of 125), the log ends at $nsteps"
[ "$(grep -c '"kind":"eval"' "$metrics")" = 3 ] || fail "expected one evaluation per epoch"

loss0=$(json_field "$first" loss)
loss1=$(json_field "$last_eval" train_loss)
acc=$(json_field "$last_eval" test_accuracy)
echo "first logged loss $loss0, final train loss $loss1, test accuracy $acc"
num_lt "$loss1" "$(awk -v l="$loss0" 'BEGIN { print l * 0.5 }')" \
  || fail "the loss fell from $loss0 only to $loss1"
num_lt 0.7 "$acc" || fail "test accuracy $acc is not well above chance"
