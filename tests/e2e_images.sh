#!/bin/sh
# End to end: image data. A CIFAR-10 folder in the binary version's layout
# (made here: random pixels, labels 0..9) trains with a flat model; the
# class count follows the data set (CIFAR-100: 100, or 20 with --label
# coarse); a missing file, --label coarse on CIFAR-10 and --augment on a flat
# model are refused with their messages. The spatial section (augmentation,
# and its resume bit for bit) runs once in:CxHxW inputs parse.
. "$(dirname "$0")/lib.sh"

# cifar_records FILE COUNT FIRST-LABEL LABEL-BYTES: COUNT records of
# LABEL-BYTES label bytes (label, or coarse and fine) and 3072 random pixels.
cifar_records() {
  : >"$1"
  i=0
  while [ $i -lt "$2" ]; do
    label=$((($3 + i) % 10))
    if [ "$4" -eq 2 ]; then
      # coarse (0..19) then fine (0..99)
      printf "\\$(printf %03o $((($3 + i) % 20)))\\$(printf %03o $((($3 + i * 7) % 100)))" >>"$1"
    else
      printf "\\$(printf %03o $label)" >>"$1"
    fi
    head -c 3072 /dev/urandom >>"$1"
    i=$((i + 1))
  done
}

c10="$work/cifar-10-batches-bin"
mkdir -p "$c10"
for b in 1 2 3 4 5; do
  cifar_records "$c10/data_batch_$b.bin" 40 "$b" 1
done
cifar_records "$c10/test_batch.bin" 20 0 1
[ "$(wc -c <"$c10/data_batch_1.bin")" -eq $((40 * 3073)) ] || fail "the records are not 3073 bytes"

# expect_error WHAT-THE-MESSAGE-SAYS ARGS...: exit 2, the message, no run dir
expect_error() {
  says=$1
  shift
  rm -rf "$work/refused"
  set +e
  "$DDTRAIN" train --run-dir "$work/refused" --quiet "$@" >"$work/out" 2>"$work/err"
  status=$?
  set -e
  [ "$status" -eq 2 ] || fail "'$*' exited $status, expected 2 ($(cat "$work/err"))"
  grep -qF -- "$says" "$work/err" || fail "'$*': message lacks '$says': $(cat "$work/err")"
  [ ! -e "$work/refused" ] || fail "'$*' wrote $work/refused"
}

flat="--data cifar10:$c10 --model in:3072,fc:16,relu,fc:10 --batch-size 20 --lr 0.01"

# 1. a flat model trains on CIFAR-10 with the class count the data set has
"$DDTRAIN" train --run-dir "$work/flat" $flat --epochs 2 --quiet 2>"$work/err" ||
  fail "training on CIFAR-10 failed: $(cat "$work/err")"
[ "$(grep -c '"kind":"train"' "$work/flat/metrics.jsonl")" -gt 0 ] || fail "no train lines"
grep -q '"kind":"eval"' "$work/flat/metrics.jsonl" || fail "no eval line"
for line in "classes = 10" "label = fine" "augment = none"; do
  grep -qxF "$line" "$work/flat/config.txt" || fail "config.txt lacks '$line'"
done
"$DDTRAIN" eval "$work/flat/checkpoints/$(ls "$work/flat/checkpoints" | tail -n 1)" \
  >"$work/eval.out" 2>"$work/err" || fail "eval of the CIFAR-10 checkpoint failed: $(cat "$work/err")"

# 2. refusals
expect_error "--augment crop:4,flip: the model's input in:3072 is flat" $flat --augment crop:4,flip
expect_error "--augment: 'crop:x'" $flat --augment crop:x
expect_error "--label coarse: only cifar100:DIR data has coarse labels" $flat --label coarse
expect_error "--model: the input width is 784 but the data set 'cifar10:$c10' has 3072 features" \
  --data "cifar10:$c10" --model 784-10
cp -r "$c10" "$work/partial"
rm "$work/partial/data_batch_3.bin"
expect_error "$work/partial: no data_batch_3.bin in that folder" \
  --data "cifar10:$work/partial" --model in:3072,fc:10
printf '\001' >>"$work/partial/test_batch.bin"
cp "$c10/data_batch_3.bin" "$work/partial/"
expect_error "$work/partial/test_batch.bin: 61461 bytes is not a whole number of 3073-byte" \
  --data "cifar10:$work/partial" --model in:3072,fc:10

# 3. CIFAR-100: 100 fine classes, or 20 coarse, unless --classes says
c100="$work/cifar-100-binary"
mkdir -p "$c100"
cifar_records "$c100/train.bin" 60 0 2
cifar_records "$c100/test.bin" 20 3 2
hundred="--data cifar100:$c100 --batch-size 20 --max-steps 3"
"$DDTRAIN" train --run-dir "$work/fine" $hundred --model in:3072,fc:100 --quiet 2>"$work/err" ||
  fail "CIFAR-100 fine labels: $(cat "$work/err")"
grep -qxF "classes = 100" "$work/fine/config.txt" || fail "CIFAR-100 did not default to 100 classes"
"$DDTRAIN" train --run-dir "$work/coarse" $hundred --model in:3072,fc:20 --label coarse --quiet \
  2>"$work/err" || fail "CIFAR-100 coarse labels: $(cat "$work/err")"
grep -qxF "classes = 20" "$work/coarse/config.txt" || fail "coarse labels did not default to 20 classes"
expect_error "--model: the output width is 10 but --classes is 100" $hundred --model in:3072,fc:10
expect_error "has label 21: allowed 0 to 19 (--classes 20)" $hundred --model in:3072,fc:20 --classes 20

# 4. spatial inputs: only once in:CxHxW parses (the conv work); until then
# the model spec's own error says so and the section is skipped
image="--data cifar10:$c10 --model in:3x32x32,fc:10 --batch-size 20 --lr 0.01 --quiet"
set +e
"$DDTRAIN" train --run-dir "$work/probe" $image --max-steps 1 >/dev/null 2>"$work/err"
status=$?
set -e
if [ "$status" -ne 0 ] && grep -qF -- "--model: 'in:3x32x32" "$work/err"; then
  echo "in:CxHxW does not parse here: skipping the spatial section" >&2
  exit 0
fi
[ "$status" -eq 0 ] || fail "a 3x32x32 input failed: $(cat "$work/err")"
expect_error "--model: the input is 1x28x28 but the data set 'cifar10:$c10' has samples of 3x32x32" \
  --data "cifar10:$c10" --model in:1x28x28,fc:10
expect_error "--augment crop:40: a padding of 40 pixels is not smaller than the 32x32 image" \
  $image --augment crop:40

# augmented training resumed mid-epoch ends with the bits of the run that
# went through: the draws are keyed by (seed, epoch, sample) alone
aug="$image --augment crop:4,flip --epochs 2 --ckpt-every-epochs 0"
"$DDTRAIN" train --run-dir "$work/aug" $aug 2>"$work/err" || fail "augmented run: $(cat "$work/err")"
grep -qxF "augment = crop:4,flip" "$work/aug/config.txt" || fail "config.txt lacks the augmentation"
"$DDTRAIN" train --run-dir "$work/aug2" $aug --max-steps 13 2>"$work/err" ||
  fail "augmented run, first part: $(cat "$work/err")"
"$DDTRAIN" train --run-dir "$work/aug2" --resume auto --max-steps 0 --quiet 2>"$work/err" ||
  fail "augmented run, resumed: $(cat "$work/err")"
final=$(ls "$work/aug/checkpoints" | tail -n 1)
tensor_sums "$work/aug/checkpoints/$final" >"$work/sums.a"
tensor_sums "$work/aug2/checkpoints/$final" >"$work/sums.b"
cmp -s "$work/sums.a" "$work/sums.b" || fail "the resumed augmented run ends with other bits"
# and augmentation changes what is learnt
"$DDTRAIN" train --run-dir "$work/plain" $image --epochs 2 --ckpt-every-epochs 0 2>"$work/err" ||
  fail "plain image run: $(cat "$work/err")"
tensor_sums "$work/plain/checkpoints/$final" >"$work/sums.p"
! cmp -s "$work/sums.a" "$work/sums.p" || fail "--augment changed nothing"
