#!/bin/sh
# End to end: --init he|lecun|torch is recorded in the checkpoint and shown
# by `ddtrain inspect` (text and JSON); a bad choice is refused with the
# choices. The distributions against their formulas: check_model's
# test_init_kinds.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

for how in he lecun torch; do
  "$DDTRAIN" train --run-dir "$work/$how" --data fashion-mnist --train-samples 256 \
    --test-samples 64 --model 784-32-10 --batch-size 64 --max-steps 1 --eval-every 0 \
    --quiet --init $how 2>/dev/null || fail "--init $how: the run failed"
  "$DDTRAIN" inspect "$work/$how/checkpoints/latest" | grep -q "initialisation $how\$" ||
    fail "inspect does not show initialisation $how"
  "$DDTRAIN" inspect --json "$work/$how/checkpoints/latest" | grep -q "\"init\":\"$how\"" ||
    fail "inspect --json does not show init $how"
done
tensor_sums "$work/he/checkpoints/latest" | grep fc1.weight >"$work/he.sums"
tensor_sums "$work/torch/checkpoints/latest" | grep fc1.weight >"$work/torch.sums"
cmp -s "$work/he.sums" "$work/torch.sums" && fail "--init torch trained the same weights as he"
if "$DDTRAIN" train --run-dir "$work/bad" --init xavier 2>"$work/bad.log"; then
  fail "--init xavier was accepted"
fi
grep -q -- "--init.*xavier.*he, lecun, torch" "$work/bad.log" || { cat "$work/bad.log" >&2; fail "--init xavier: the message lacks the choices"; }
echo ok
