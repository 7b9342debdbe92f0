#!/bin/sh
# End to end under mpirun: a small convolutional network on Fashion-MNIST
# (in:1x28x28) learns on one and two ranks, the two agree to rounding (no
# batch norm, so each sample's gradient is the same whatever the split), and
# a two-rank run resumed from a checkpoint ends byte for byte where the
# uninterrupted run ends. Named models (--model fmnist-cnn) at the end.
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

# ---- named models: --model list, a run of fmnist-cnn, its checkpoint read by
# eval and inspect, a resume that resolves the name again; f1 on flat data
# takes the data's width and classes (and trains as its MLP shorthand), c1
# refuses it
"$DDTRAIN" train --model list >"$work/list" 2>"$work/list.err" ||
  fail "train --model list failed: $(cat "$work/list.err")"
for want in "f1 *1462794 " "c1 *1066506 " "c2 *14990794 " "fmnist-cnn *3276874 " "resnet20 " \
  "Keskar et al. 2017" "He et al. 2016"; do
  grep -q "$want" "$work/list" || fail "--model list lacks '$want': $(cat "$work/list")"
done
[ ! -s "$work/list.err" ] || fail "--model list wrote to stderr: $(cat "$work/list.err")"
# rank 0 alone prints it
"$RUN" -np 2 -- train --model list >"$work/list2" || fail "train --model list on 2 ranks failed"
[ "$(grep -c '^f1 ' "$work/list2")" -eq 1 ] || fail "2 ranks printed: $(cat "$work/list2")"
set +e
"$DDTRAIN" train --run-dir "$work/nonet" --model resnet21 --quiet 2>"$work/err"
status=$?
set -e
[ "$status" -eq 2 ] || fail "--model resnet21 exited $status, expected 2"
grep -qF "known: f1, c1, c2, resnet20, fmnist-cnn" "$work/err" ||
  fail "--model resnet21: the message lacks the known names: $(cat "$work/err")"

named="--data fashion-mnist --model fmnist-cnn --train-samples 512 --test-samples 256
  --max-steps 3 --ckpt-every 1 --quiet"
"$RUN" -np 1 -- train --run-dir "$work/named" $named || fail "the fmnist-cnn run failed"
expanded="in:1x28x28,conv:32k5p2,bn,relu,maxpool:2,conv:64k5p2,bn,relu,maxpool:2,fc:1024,bn,relu,fc:10"
grep -qx "model = fmnist-cnn" "$work/named/config.txt" || fail "config.txt does not keep the name"
last="$work/named/checkpoints/step-00000003.ckpt"
"$DDTRAIN" inspect "$last" >"$work/inspect" || fail "inspect of the fmnist-cnn checkpoint failed"
grep -q "model $expanded\$" "$work/inspect" || fail "the checkpoint's spec is not fmnist-cnn's: $(head -4 "$work/inspect")"
grep -q "conv2.weight *64x800 " "$work/inspect" || fail "the checkpoint has no 64x800 conv2.weight"
"$DDTRAIN" eval "$last" --test-samples 256 >"$work/eval" 2>&1 || fail "eval of the fmnist-cnn checkpoint failed: $(cat "$work/eval")"
grep -q "^test  loss .* (256 samples)" "$work/eval" || fail "eval printed: $(cat "$work/eval")"
cp -r "$work/named" "$work/named.b"
"$RUN" -np 1 -- train --run-dir "$work/named.b" --quiet \
  --resume "$work/named.b/checkpoints/step-00000002.ckpt" || fail "the fmnist-cnn resume failed"
tensor_sums "$last" >"$work/sums.a"
tensor_sums "$work/named.b/checkpoints/step-00000003.ckpt" >"$work/sums.b"
cmp -s "$work/sums.a" "$work/sums.b" || fail "the resumed fmnist-cnn run ended with other parameters"

# a CSV file of 6 features and 3 classes
awk 'BEGIN { for (i = 0; i < 48; i++) { printf "%d", i % 3
  for (j = 0; j < 6; j++) printf ",%.3f", ((i * 7 + j * 3) % 11) / 11 + (i % 3); print "" } }' \
  >"$work/toy-train.csv"
cp "$work/toy-train.csv" "$work/toy-test.csv"
toy="--data $work/toy-train.csv --classes 3 --batch-size 16 --max-steps 2 --quiet"
"$DDTRAIN" train --run-dir "$work/f1" --model f1 $toy || fail "f1 on a CSV file failed"
"$DDTRAIN" inspect "$work/f1/checkpoints/step-00000002.ckpt" >"$work/inspect"
grep -q "model in:6,fc:512,bn,relu,.*,fc:512,bn,relu,fc:3\$" "$work/inspect" ||
  fail "f1 did not take the CSV's width and classes: $(head -4 "$work/inspect")"
# f1 is the MLP shorthand with --bn: the same bits
"$DDTRAIN" train --run-dir "$work/mlp" --model 6-512-512-512-512-512-3 --bn $toy ||
  fail "the MLP on a CSV file failed"
tensor_sums "$work/f1/checkpoints/step-00000002.ckpt" >"$work/sums.a"
tensor_sums "$work/mlp/checkpoints/step-00000002.ckpt" >"$work/sums.b"
cmp -s "$work/sums.a" "$work/sums.b" || fail "f1 and the same MLP spelt out ended with other parameters"
set +e
"$DDTRAIN" train --run-dir "$work/c1" --model c1 $toy 2>"$work/err"
status=$?
set -e
[ "$status" -eq 2 ] || fail "c1 on flat samples exited $status, expected 2"
grep -qF "the model c1 takes images (C x H x W samples), the data's samples are 6 flat features" \
  "$work/err" || fail "c1 on flat samples: $(cat "$work/err")"
echo "named models: --model list, fmnist-cnn trains, evaluates, inspects and resumes; f1 takes a CSV's shape"
