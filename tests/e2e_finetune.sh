#!/bin/sh
# End to end: --init-from takes a checkpoint's weights; --freeze-layers keeps
# the first layers bit for bit; a head of another width needs --reset-head
# (and the refusal says so); without --model the model is the checkpoint's,
# its head sized by --classes alone; the log names the frozen layers, the
# parameters that train and each layer's rate under --layer-lr-decay.
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
grep -q "fc3.weight has shape 10x32 in the checkpoint, the model needs 12x32; only the last layer differs: give --reset-head" "$work/err" \
  || fail "head mismatch: $(cat "$work/err")"
grep -q "leave out --model to take the checkpoint's (in:784,fc:64,bn,relu,fc:32,bn,relu,fc:10," "$work/err" \
  || fail "head mismatch does not name the checkpoint's model: $(cat "$work/err")"
[ ! -e "$work/wide" ] || fail "the refused run wrote its run directory"

"$DDTRAIN" train --run-dir "$work/wide" $common --model 784-64-32-12 --classes 12 --bn \
  --init-from "$base" --reset-head --freeze-layers 2 || fail "--reset-head failed"
wide="$work/wide/checkpoints/step-00000032.ckpt"
"$DDTRAIN" inspect "$wide" | grep -q "fc3.weight  *12x32 " || fail "the new head is not 12x32"
[ "$(sum "$base" fc2.weight)" = "$(sum "$wide" fc2.weight)" ] || fail "fc2.weight moved although frozen"

# without --model: the checkpoint's model, said in the log and kept in config.txt
"$DDTRAIN" train --run-dir "$work/same" $common --init-from "$base" --freeze-layers 1 \
  --layer-lr-decay 0.5 --max-steps 2 2>"$work/err" || fail "--init-from without --model failed: $(cat "$work/err")"
grep -q "no --model given, so the model is the checkpoint's: in:784,fc:64,bn,relu,fc:32,bn,relu,fc:10$" "$work/err" \
  || fail "no log line for the model taken from --init-from: $(cat "$work/err")"
grep -q "^model = in:784,fc:64,bn,relu,fc:32,bn,relu,fc:10$" "$work/same/config.txt" || fail "config.txt: $(grep model "$work/same/config.txt")"
grep -q -- "--freeze-layers 1: fc1, bn1 frozen (weights, and batch norms' running statistics); 2474 of 52842 parameters train" "$work/err" \
  || fail "the frozen layers are not logged: $(cat "$work/err")"
grep -q -- "--layer-lr-decay 0.5: rates at --lr 0.1: fc1, bn1 frozen; fc2, bn2 0.05 (x0.5); fc3 0.1 (x1); 2474 of 52842 parameters train" "$work/err" \
  || fail "the layer rates are not logged: $(cat "$work/err")"
same="$work/same/checkpoints/step-00000002.ckpt"
[ "$(sum "$base" fc1.weight)" = "$(sum "$same" fc1.weight)" ] || fail "fc1.weight moved although frozen"

# ... and with another class count, --classes alone sizes the head and
# re-initialises it (the rest loads)
"$DDTRAIN" train --run-dir "$work/twelve" $common --classes 12 --init-from "$base" --freeze-layers 2 \
  --max-steps 2 2>"$work/err" || fail "--init-from with --classes 12 failed: $(cat "$work/err")"
grep -q "its head has 10 outputs and this run has 12 classes: the last layer gets 12 outputs and is initialised afresh (--reset-head)" "$work/err" \
  || fail "no log line for the new head: $(cat "$work/err")"
twelve="$work/twelve/checkpoints/step-00000002.ckpt"
"$DDTRAIN" inspect "$twelve" | grep -q "fc3.weight  *12x32 " || fail "the head is not 12x32"
[ "$(sum "$base" fc2.weight)" = "$(sum "$twelve" fc2.weight)" ] || fail "fc2.weight was not loaded (or moved although frozen)"
grep -q "^model = in:784,fc:64,bn,relu,fc:32,bn,relu,fc:12$" "$work/twelve/config.txt" || fail "config.txt: $(grep model "$work/twelve/config.txt")"
# a given --model is the user's: a mismatch elsewhere than the head is
# refused, naming the checkpoint's model
set +e
"$DDTRAIN" train --run-dir "$work/narrow" $common --model 784-16-32-10 --bn --init-from "$base" 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] && grep -q "the model needs 16x784; leave out --model to take the checkpoint's (in:784,fc:64" "$work/err" \
  || fail "another hidden width: status $status, $(cat "$work/err")"
echo "fine-tuning: init-from, freeze-layers, reset-head, the model from the checkpoint"
