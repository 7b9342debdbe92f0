#!/bin/sh
# End to end: --batch-auto and --lr-scaling adascale under mpirun. A run
# resumed from checkpoints before and after a batch change ends byte for byte
# where the uninterrupted run ends (parameters, optimizer state, metrics with
# the decisions); with ghost batch norm the decisions are the same at 1 and 2
# ranks; AdaScale logs its gain and ends on its scale-invariant clock; a
# grown batch that does not split at another rank count is refused there,
# and a resume reports the batch in force; the options it cannot work with
# are refused.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

args="--data fashion-mnist --train-samples 4096 --test-samples 500 --model 784-64-10
  --batch-size 64 --batch-auto 1024 --lr-scaling adascale --ref-batch 64 --epochs 4
  --noise-every 2 --log-every 4 --ckpt-every 10 --ckpt-keep 100 --bn-group 16 --quiet"

# 1. resume equality through a batch change (auto and AdaScale at once)
"$RUN" -np 2 -- train --run-dir "$work/a" $args || fail "the uninterrupted run failed"
grep -q '"kind":"batch".*"decision":"grow"' "$work/a/metrics.jsonl" || fail "the batch never grew"
grep '"kind":"train"' "$work/a/metrics.jsonl" | grep -q '"gain":' || fail "no gain in the train lines"
final=$(sed -n 's/^\(step-[0-9]*\.ckpt\)$/\1/p' "$work/a/checkpoints/latest" 2>/dev/null || true)
[ -n "$final" ] || final=$(ls "$work/a/checkpoints" | grep '^step-' | sort | tail -n 1)
tensor_sums "$work/a/checkpoints/$final" >"$work/sums.a"
metrics_no_timing "$work/a/metrics.jsonl" >"$work/metrics.a"
# the first growth's step S: checkpoints before it and after it
grow=$(grep '"decision":"grow"' "$work/a/metrics.jsonl" | head -n 1)
S=$(json_field "$grow" step)
before=$(ls "$work/a/checkpoints" | grep '^step-' | sort | awk -F'[-.]' -v s="$S" '$2 + 0 < s' | tail -n 1)
after=$(ls "$work/a/checkpoints" | grep '^step-' | sort | awk -F'[-.]' -v s="$S" '$2 + 0 >= s' | head -n 1)
[ -n "$before" ] && [ -n "$after" ] && [ "$after" != "$final" ] ||
  fail "no checkpoints on both sides of the batch change at step $S ($before, $after, $final)"
for ck in $before $after; do
  rm -rf "$work/r"
  cp -r "$work/a" "$work/r"
  rm -f "$work/r/finished"
  "$RUN" -np 2 -- train --run-dir "$work/r" --resume "$work/r/checkpoints/$ck" --quiet ||
    fail "resume from $ck failed"
  tensor_sums "$work/r/checkpoints/$final" >"$work/sums.r"
  cmp -s "$work/sums.a" "$work/sums.r" || { diff "$work/sums.a" "$work/sums.r" >&2; fail "resumed from $ck: parameters differ from the uninterrupted run"; }
  metrics_no_timing "$work/r/metrics.jsonl" >"$work/metrics.r"
  cmp -s "$work/metrics.a" "$work/metrics.r" || { diff "$work/metrics.a" "$work/metrics.r" >&2; fail "resumed from $ck: metrics differ"; }
done

# 2. AdaScale ends when its clock reaches --epochs: the last train line's
# si_epoch is 4 or just past it, and the data went further
last=$(grep '"kind":"train"' "$work/a/metrics.jsonl" | tail -n 1)
si=$(json_field "$last" si_epoch)
ep=$(json_field "$last" epoch)
awk -v s="$si" -v e="$ep" 'BEGIN { exit !(s >= 4 && s < 4.2 && e >= s) }' ||
  fail "AdaScale ended at si_epoch $si, epoch $ep: expected si_epoch 4 and the data at least as far"

# 3. the decisions are the same at 1 and 2 ranks with ghost batch norm
one="--data fashion-mnist --train-samples 4096 --test-samples 200 --model 784-64-10
  --batch-size 64 --batch-auto 1024 --lr-scaling linear --ref-batch 64 --epochs 5
  --noise-every 2 --bn-group 16 --eval-every 0 --quiet"
"$RUN" -np 1 -- train --run-dir "$work/n1" $one || fail "the 1-rank run failed"
"$RUN" -np 2 -- train --run-dir "$work/n2" $one || fail "the 2-rank run failed"
for n in 1 2; do
  grep '"kind":"batch"' "$work/n$n/metrics.jsonl" | sed 's/.*"decision":"\([^"]*\)","from":\([0-9]*\),"to":\([0-9]*\).*/\1 \2 \3/' >"$work/dec.$n"
done
[ -s "$work/dec.1" ] || fail "the 1-rank run made no decisions"
grep -q grow "$work/dec.1" || fail "the 1-rank run never grew the batch"
cmp -s "$work/dec.1" "$work/dec.2" || { diff "$work/dec.1" "$work/dec.2" >&2; fail "the decisions differ between 1 and 2 ranks"; }

# 4. a grown batch at another rank count: 3 ranks x --accumulate 2 grow to
# the cap 396 = 3 x 2 x 66, which 4 ranks x 2 cannot split (refused, naming
# both counts); resumed on 3 ranks the start-up lines tell the batch in force
grown="--data fashion-mnist --train-samples 2048 --test-samples 200 --model 784-32-10
  --batch-size 96 --batch-auto 400 --accumulate 2 --lr-scaling linear --epochs 4
  --noise-every 2 --ckpt-every 1 --ckpt-keep 100 --eval-every 0 --quiet"
"$RUN" -np 3 -- train --run-dir "$work/g" $grown 2>/dev/null || fail "the 3-rank growing run failed"
mid=""
for f in "$work/g/checkpoints"/step-*.ckpt; do
  "$DDTRAIN" inspect "$f" | grep -q 'batch [1-9][0-9]* of the epoch, .*global batch 396$' && mid=$f
done
[ -n "$mid" ] || fail "the 3-rank run never reached batch 396 mid-epoch"
last=$(ls "$work/g/checkpoints" | grep '^step-' | sort | tail -n 1 | sed 's/step-0*\([0-9]*\).ckpt/\1/')
for n in 3 4; do
  rm -rf "$work/g$n"
  cp -r "$work/g" "$work/g$n"
  rm -f "$work/g$n/finished"
done
st=0
"$RUN" -np 4 -- train --run-dir "$work/g4" --resume "$work/g4/checkpoints/${mid##*/}" --quiet \
  2>"$work/g4.err" || st=$?
[ "$st" -eq 2 ] || fail "resume of batch 396 on 4 ranks: exit status $st, expected 2"
grep -q "batch 396 chosen on 3 ranks is not a multiple of 8 (4 ranks x --bn-group 1 x --accumulate 2).*resume on 3 ranks" \
  "$work/g4.err" || { cat "$work/g4.err" >&2; fail "resume of batch 396 on 4 ranks: no reason naming the rank counts"; }
"$RUN" -np 3 -- train --run-dir "$work/g3" --resume "$work/g3/checkpoints/${mid##*/}" --quiet \
  2>"$work/g3.err" || fail "resume of batch 396 on 3 ranks failed"
grep -q "3 ranks, $last steps$" "$work/g3.err" ||
  { grep training "$work/g3.err" >&2; fail "resumed at batch 396: the start-up line does not count $last steps"; }
grep -q "global batch of 396 as 2 micro-batches of 66 samples" "$work/g3.err" ||
  { grep accumulate "$work/g3.err" >&2; fail "resumed at batch 396: the --accumulate line is not about 396"; }

# 5. what they cannot work with
refused() {
  if "$DDTRAIN" train --run-dir "$work/bad" --train-samples 1024 "$@" 2>"$work/err"; then
    fail "accepted: $*"
  fi
  grep -q -- "$REASON" "$work/err" || { cat "$work/err" >&2; fail "$*: no '$REASON'"; }
  [ ! -e "$work/bad" ] || fail "$*: wrote the run directory"
}
REASON="--batch-auto: 128 is below --batch-size 256" refused --batch-auto 128
REASON="--batch-schedule with --batch-auto" refused --batch-auto 512 --batch-schedule 2:512
REASON="--warmup-steps with --lr-scaling adascale" refused --lr-scaling adascale --warmup-steps 10
REASON="--batch-auto reads the gradient noise scale" refused --batch-auto 512 --no-noise-scale
REASON="must be a multiple of 48" refused --batch-auto 512 --bn-group 48
REASON="--local-steps with --lr-scaling adascale" refused --lr-scaling adascale --local-steps 4
echo "adaptive: resume through a batch change, AdaScale's clock, rank-count invariance, refusals, a grown batch at another rank count: ok"
