#!/bin/sh
# End to end: named models. `train --model list` prints them (rank 0 alone);
# an unknown name is refused with the known ones; a run of fmnist-cnn keeps
# the name in config.txt and its layer list in the checkpoint, which eval and
# inspect read and a resume continues byte for byte; on a CSV file f1 takes
# the data's width and class count (and trains to the bits of its MLP
# shorthand), c1 refuses flat samples.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

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
