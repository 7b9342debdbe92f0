#!/bin/sh
# End to end under mpirun: a small convolutional network on Fashion-MNIST
# (in:1x28x28) learns on one and two ranks, the two agree to rounding (no
# batch norm, so each sample's gradient is the same whatever the split), and
# a two-rank run resumed from a checkpoint ends byte for byte where the
# uninterrupted run ends.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

args="--data fashion-mnist --model in:1x28x28,conv:16k5p2,relu,conv:32k5s2p2,relu,fc:10
  --train-samples 2048 --test-samples 512 --epochs 1 --log-every 1 --ckpt-every 4
  --ckpt-keep 10 --quiet"
final=step-00000008.ckpt

for n in 1 2; do
  "$RUN" -np $n -- train --run-dir "$work/r$n" $args || fail "the conv run on $n ranks failed"
  line=$(grep '"kind":"eval"' "$work/r$n/metrics.jsonl" | tail -n 1)
  acc=$(json_field "$line" test_accuracy)
  [ -n "$acc" ] || fail "$n ranks: no test accuracy in the metrics"
  num_lt 0.3 "$acc" || fail "$n ranks: test accuracy $acc after an epoch, chance is 0.1"
done
same_losses "$work/r1/metrics.jsonl" "$work/r2/metrics.jsonl" 1e-4 "conv, 1 vs 2 ranks"

# resumed from the step-4 checkpoint: the same parameters and metrics
cp -r "$work/r2" "$work/b"
"$RUN" -np 2 -- train --run-dir "$work/b" --resume "$work/b/checkpoints/step-00000004.ckpt" \
  --quiet 2>"$work/b.err" || fail "resume of the conv run failed: $(cat "$work/b.err")"
tensor_sums "$work/r2/checkpoints/$final" >"$work/sums.a"
tensor_sums "$work/b/checkpoints/$final" >"$work/sums.b"
grep -q 'conv2.weight' "$work/sums.a" || fail "the checkpoint has no conv2.weight"
cmp -s "$work/sums.a" "$work/sums.b" || { diff "$work/sums.a" "$work/sums.b" >&2; fail "the resumed conv run ended with other parameters"; }
metrics_no_timing "$work/r2/metrics.jsonl" >"$work/metrics.a"
metrics_no_timing "$work/b/metrics.jsonl" >"$work/metrics.b"
cmp -s "$work/metrics.a" "$work/metrics.b" || { diff "$work/metrics.a" "$work/metrics.b" >&2; fail "the resumed conv run logged other metrics"; }
echo "conv on Fashion-MNIST: learns on 1 and 2 ranks, which agree; resume byte-identical"
