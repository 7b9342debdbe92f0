#!/bin/sh
# End to end: what a tuning workflow expects. A validation split held out of
# the training set (--val-fraction: drawn from the seed alone, the same at 1
# and 2 ranks, disjoint from the rows trained on) or given (--val-data),
# reported beside test in metrics.jsonl, the progress line and summarize.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

small="--data fashion-mnist --model 784-32-10 --no-bn --train-samples 2000 --test-samples 300
  --batch-size 200 --log-every 5 --eval-train-samples 500"

# 1. --val-fraction 0.25 of 2000 rows: 500 held out, 1500 trained on
"$DDTRAIN" train --run-dir "$work/v1" $small --epochs 1 --val-fraction 0.25 2>"$work/v1.err" ||
  { cat "$work/v1.err" >&2; fail "the --val-fraction run failed"; }
grep -q "on 1500 samples" "$work/v1.err" || { cat "$work/v1.err" >&2; fail "--val-fraction 0.25 of 2000: not 1500 samples trained on"; }
grep -q "validation: 500 samples held out of the training set" "$work/v1.err" ||
  fail "--val-fraction: no log line of the 500 held-out samples"
grep -q "| val loss [0-9.]* acc [0-9.]* | test loss" "$work/v1.err" || fail "the progress line lacks the validation metrics"
ev=$(grep '"kind":"eval"' "$work/v1/metrics.jsonl" | tail -1)
[ -n "$(json_field "$ev" val_loss)" ] && [ -n "$(json_field "$ev" val_accuracy)" ] ||
  fail "the eval line lacks val_loss/val_accuracy: $ev"
# 1500 rows at batch 200: 7 full steps an epoch (the 8th batch would be short)
steps=$(json_field "$ev" step)
[ "$steps" = 7 ] || fail "1500 training rows at batch 200 should make 7 steps, not $steps"
# deterministic: the same seed gives the same metrics; another seed another split
"$DDTRAIN" train --run-dir "$work/v1b" $small --epochs 1 --val-fraction 0.25 --quiet 2>/dev/null ||
  fail "the repeated --val-fraction run failed"
[ "$(metrics_no_timing "$work/v1/metrics.jsonl")" = "$(metrics_no_timing "$work/v1b/metrics.jsonl")" ] ||
  fail "--val-fraction: two runs with the same seed differ"
# 2 ranks agree on the split: without batch norm the math is the same up to
# summation order, so the same validation set gives the same loss to rounding
"$RUN" -np 2 -- train --run-dir "$work/v2" $small --epochs 1 --val-fraction 0.25 --quiet \
  2>"$work/v2.err" || { cat "$work/v2.err" >&2; fail "the 2-rank --val-fraction run failed"; }
ev2=$(grep '"kind":"eval"' "$work/v2/metrics.jsonl" | tail -1)
[ "$(json_field "$ev2" step)" = 7 ] || fail "2 ranks: not 7 steps over 1500 training rows"
awk -v a="$(json_field "$ev" val_loss)" -v b="$(json_field "$ev2" val_loss)" \
  'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-3 * a) }' ||
  fail "the validation loss at 1 and 2 ranks differs beyond rounding: $(json_field "$ev" val_loss) vs $(json_field "$ev2" val_loss)"
"$DDTRAIN" train --run-dir "$work/v0" $small --epochs 1 --quiet 2>/dev/null || fail "the run without a split failed"
grep -q val_loss "$work/v0/metrics.jsonl" && fail "a run without a validation set writes val_loss"
# summarize shows the validation columns when a run has them
"$DDTRAIN" summarize "$work/v0" "$work/v1" >"$work/sum" || fail "summarize failed"
head -1 "$work/sum" | grep -q "train_accuracy,val_loss,val_accuracy,best_val_accuracy,test_loss" ||
  { cat "$work/sum" >&2; fail "summarize lacks the validation columns"; }
"$DDTRAIN" summarize "$work/v0" >"$work/sum0" || fail "summarize of one run failed"
grep -q val_ "$work/sum0" && fail "summarize shows validation columns for runs without one"

# --val-data: a separate set in a --data format (a CSV here)
awk 'BEGIN { for (i = 0; i < 20; i++) { printf "%d", i % 10; for (f = 0; f < 784; f++) printf ",%d", (i * 7 + f) % 256; print "" } }' \
  >"$work/val.csv"
"$DDTRAIN" train --run-dir "$work/vd2" $small --epochs 1 --val-data "$work/val.csv" 2>"$work/vd.err" ||
  { cat "$work/vd.err" >&2; fail "the --val-data run failed"; }
grep -q "validation: 20 samples of" "$work/vd.err" || fail "--val-data: no log line of its 20 samples"
grep -q '"val_loss"' "$work/vd2/metrics.jsonl" || fail "--val-data: no val_loss in metrics.jsonl"

# refusals: exit 2, the option and the value named, nothing written
refuse() { # WHAT PATTERN ARGS...
  what=$1 pat=$2
  shift 2
  set +e
  "$DDTRAIN" train --run-dir "$work/bad" $small --epochs 1 --quiet "$@" 2>"$work/err"
  status=$?
  set -e
  [ $status -eq 2 ] || fail "$what: exit $status, want 2"
  grep -q -- "$pat" "$work/err" || { cat "$work/err" >&2; fail "$what: the error does not say '$pat'"; }
  [ ! -e "$work/bad" ] || fail "$what: the refused run wrote its run directory"
}
refuse "--val-fraction 1" "--val-fraction.*1" --val-fraction 1
refuse "--val-fraction -0.1" "--val-fraction" --val-fraction -0.1
refuse "--val-fraction abc" "--val-fraction" --val-fraction abc
refuse "--val-fraction 0.0001 of 2000" "holds out 0" --val-fraction 0.0001
refuse "both validation options" "give one validation set, not both" --val-fraction 0.1 --val-data "$work/val.csv"
refuse "--val-data missing" "$work/none.csv" --val-data "$work/none.csv"


# 2. --early-stop: stops before its epochs end, cleanly (exit 0, final
# checkpoint, finished, a line saying why); checkpoints/best.ckpt holds the
# best evaluation's weights; resume continues the patience counter
es="--data fashion-mnist --model 784-64-10 --no-bn --train-samples 500 --test-samples 200
  --batch-size 100 --val-fraction 0.2 --epochs 40 --lr 0.05 --ckpt-keep 1"
"$DDTRAIN" train --run-dir "$work/es1" $es --early-stop 1 --quiet 2>"$work/es1.err" ||
  { cat "$work/es1.err" >&2; fail "the --early-stop 1 run failed"; }
grep -q "early stop: val_loss has not improved for 1 evaluation (best .* at step 12, --early-stop 1); stopping after step 16" \
  "$work/es1.err" || { cat "$work/es1.err" >&2; fail "--early-stop 1: no line saying why it stopped at step 16"; }
[ "$(cat "$work/es1/finished")" = "step 16" ] || fail "--early-stop 1: finished does not say step 16"
[ -f "$work/es1/checkpoints/step-00000016.ckpt" ] || fail "--early-stop 1: no final checkpoint at step 16"
[ -f "$work/es1/checkpoints/best.ckpt" ] || fail "--early-stop 1: no checkpoints/best.ckpt"
[ "$(ls "$work/es1/checkpoints" | grep -c 'step-')" -eq 1 ] || fail "--ckpt-keep 1 keeps more than one step checkpoint"
best=$(grep '"kind":"eval","step":12,' "$work/es1/metrics.jsonl")
"$DDTRAIN" eval "$work/es1/checkpoints/best.ckpt" --json >"$work/best.json" || fail "eval of best.ckpt failed"
awk -v a="$(json_field "$best" val_loss)" -v b="$(json_field "$(cat "$work/best.json")" val_loss)" \
  'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d <= 1e-6 * a) }' ||
  fail "eval of best.ckpt: val_loss $(json_field "$(cat "$work/best.json")" val_loss), logged best $(json_field "$best" val_loss)"
[ "$(json_field "$(cat "$work/best.json")" val_samples)" = 100 ] || fail "eval of best.ckpt does not hold out the run's 100 validation samples"
# patience 2 uninterrupted, and interrupted after the evaluation at step 16
# (one without improvement) then resumed: the counter goes on, same end
"$DDTRAIN" train --run-dir "$work/es2" $es --early-stop 2 --quiet 2>/dev/null || fail "the --early-stop 2 run failed"
[ "$(cat "$work/es2/finished")" = "step 20" ] || fail "--early-stop 2 did not stop at step 20"
"$DDTRAIN" train --run-dir "$work/es3" $es --early-stop 2 --max-steps 16 --quiet 2>/dev/null ||
  fail "the interrupted --early-stop 2 run failed"
"$DDTRAIN" train --run-dir "$work/es3" --resume auto --max-steps 0 --quiet 2>/dev/null ||
  fail "the resumed --early-stop 2 run failed"
[ "$(cat "$work/es3/finished")" = "step 20" ] || fail "a resumed --early-stop run lost its counter: finished $(cat "$work/es3/finished")"
# (--max-steps adds a train line at its step; the evaluations are the same)
[ "$(metrics_no_timing "$work/es2/metrics.jsonl" | grep '"kind":"eval"')" = \
  "$(metrics_no_timing "$work/es3/metrics.jsonl" | grep '"kind":"eval"')" ] ||
  fail "the resumed --early-stop run's evaluations differ from the uninterrupted run's"
cmp -s "$work/es2/checkpoints/best.ckpt" "$work/es3/checkpoints/best.ckpt" ||
  [ "$(tensor_sums "$work/es2/checkpoints/best.ckpt")" = "$(tensor_sums "$work/es3/checkpoints/best.ckpt")" ] ||
  fail "the resumed run's best checkpoint differs"
# a resumed run that had stopped early stays stopped
"$DDTRAIN" train --run-dir "$work/es2" --resume auto --quiet 2>/dev/null || fail "resuming a stopped run failed"
[ "$(grep -c '"kind":"eval"' "$work/es2/metrics.jsonl")" -eq 5 ] || fail "a run that stopped early trained on when resumed"
# without a validation set it watches the test set, with a warning
"$DDTRAIN" train --run-dir "$work/es4" --data fashion-mnist --model 784-32-10 --no-bn --train-samples 400 \
  --test-samples 100 --batch-size 100 --epochs 2 --keep-best --quiet 2>"$work/es4.err" || fail "--keep-best without a validation set failed"
grep -q "watch the test set" "$work/es4.err" || fail "--keep-best without a validation set: no warning"
grep -q "best test_loss" "$work/es4.err" || fail "--keep-best without a validation set does not watch test_loss"

# 3. --clip-norm and --label-smoothing run at 2 ranks; a bound no step
# reaches changes nothing (the same bits), a tight one changes the run
cl="--data fashion-mnist --model 784-32-10 --train-samples 1000 --test-samples 200
  --batch-size 100 --epochs 1 --log-every 1 --noise-every 1 --quiet"
"$RUN" -np 2 -- train --run-dir "$work/c0" $cl 2>/dev/null || fail "the 2-rank run without clipping failed"
"$RUN" -np 2 -- train --run-dir "$work/c1" $cl --clip-norm 1e6 2>/dev/null || fail "--clip-norm 1e6 at 2 ranks failed"
"$RUN" -np 2 -- train --run-dir "$work/c2" $cl --clip-norm 0.05 --label-smoothing 0.1 2>/dev/null ||
  fail "--clip-norm 0.05 --label-smoothing 0.1 at 2 ranks failed"
[ "$(metrics_no_timing "$work/c0/metrics.jsonl")" = "$(metrics_no_timing "$work/c1/metrics.jsonl")" ] ||
  fail "--clip-norm above every gradient norm changed the run"
[ "$(tensor_sums "$work/c0/checkpoints/step-00000010.ckpt")" = "$(tensor_sums "$work/c1/checkpoints/step-00000010.ckpt")" ] ||
  fail "--clip-norm above every gradient norm changed the parameters"
# the logged grad_norm is before clipping: step 1 is the same as without
g0=$(json_field "$(grep '"step":1,' "$work/c0/metrics.jsonl" | head -1)" grad_norm)
g2=$(json_field "$(grep '"step":1,' "$work/c2/metrics.jsonl" | head -1)" grad_norm)
num_lt 0.05 "$g0" || fail "step 1's gradient norm $g0 is not above the bound 0.05: the test clips nothing"
# (label smoothing changes step 1's gradient too, so only its size is compared)
num_lt 0.05 "$g2" || fail "the logged grad_norm $g2 is after clipping"
ev0=$(grep '"kind":"eval"' "$work/c0/metrics.jsonl")
ev2=$(grep '"kind":"eval"' "$work/c2/metrics.jsonl")
[ "$(json_field "$ev0" test_loss)" != "$(json_field "$ev2" test_loss)" ] || fail "--clip-norm 0.05 changed nothing"
# refusals
refuse "--clip-norm -1" "--clip-norm" --clip-norm -1
refuse "--label-smoothing 1" "--label-smoothing" --label-smoothing 1
echo "e2e_workflow: ok"
