#!/bin/sh
# End to end: --init-from takes a checkpoint's weights; --freeze-layers keeps
# the first layers bit for bit; a head of another width needs --reset-head.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

common="--data fashion-mnist --train-samples 2048 --test-samples 256 --batch-size 64
  --epochs 1 --quiet --eval-every 0"
"$DDTRAIN" train --run-dir "$work/base" $common --model 784-64-32-10 --bn \
  || fail "the base run failed"
base="$work/base/checkpoints/step-00000032.ckpt"
[ -f "$base" ] || fail "no base checkpoint"
sum() { "$DDTRAIN" inspect "$1" | grep " $2 " | head -n 1 | sed 's/.*crc32 //'; }

"$DDTRAIN" train --run-dir "$work/frozen" $common --model 784-64-32-10 --bn --seed 7 \
  --init-from "$base" --freeze-layers 1 || fail "fine-tuning with a frozen layer failed"
tuned="$work/frozen/checkpoints/step-00000032.ckpt"
[ "$(sum "$base" fc1.weight)" = "$(sum "$tuned" fc1.weight)" ] || fail "fc1.weight moved although frozen"
[ "$(sum "$base" bn1.weight)" = "$(sum "$tuned" bn1.weight)" ] || fail "bn1.weight moved although frozen"
[ "$(sum "$base" fc2.weight)" != "$(sum "$tuned" fc2.weight)" ] || fail "fc2.weight did not train"

set +e
"$DDTRAIN" train --run-dir "$work/wide" $common --model 784-64-32-12 --classes 12 --bn \
  --init-from "$base" 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] || fail "a head of another width was accepted without --reset-head ($status)"
grep -q "fc3.weight has shape 10x32 in the checkpoint, the model needs 12x32" "$work/err" \
  || fail "head mismatch: $(cat "$work/err")"
[ ! -e "$work/wide" ] || fail "the refused run wrote its run directory"

"$DDTRAIN" train --run-dir "$work/wide" $common --model 784-64-32-12 --classes 12 --bn \
  --init-from "$base" --reset-head --freeze-layers 2 || fail "--reset-head failed"
wide="$work/wide/checkpoints/step-00000032.ckpt"
"$DDTRAIN" inspect "$wide" | grep -q "fc3.weight  *12x32 " || fail "the new head is not 12x32"
[ "$(sum "$base" fc2.weight)" = "$(sum "$wide" fc2.weight)" ] || fail "fc2.weight moved although frozen"
echo "fine-tuning: init-from, freeze-layers, reset-head"
