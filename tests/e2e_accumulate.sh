#!/bin/sh
# End to end: --accumulate K under mpirun. Two ranks with a global batch of
# 240 in 3 micro-batches end with the same bits (parameters, batch-norm
# running statistics, optimizer state, every logged loss) as the same batch
# without accumulation and --bn-group 40, for an MLP with dropout and for a
# convolutional model with a residual block and ghost groups inside the
# micro-batches; a K that does not divide the slices, or a --bn-group larger
# than a micro-batch, is refused before anything is written; a run stopped
# and resumed ends where the uninterrupted one does; K is in config.txt and
# the checkpoint, and cannot change on resume.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

common="--data fashion-mnist --train-samples 1440 --test-samples 256 --eval-every 0
  --log-every 1 --ckpt-every-epochs 0 --lr 0.05 --quiet"

# Fails unless runs $1 and $2 end with the same tensors at checkpoint $3
# and the same logged losses.
same_run() { # A B CKPT WHAT
  tensor_sums "$work/$1/checkpoints/$3" >"$work/sums.$1"
  tensor_sums "$work/$2/checkpoints/$3" >"$work/sums.$2"
  [ -s "$work/sums.$1" ] || fail "$4: no tensors in $1's $3"
  cmp -s "$work/sums.$1" "$work/sums.$2" || { diff "$work/sums.$1" "$work/sums.$2" >&2; fail "$4: the tensors differ"; }
  same_losses "$work/$1/metrics.jsonl" "$work/$2/metrics.jsonl" 0 "$4"
}

# 1. MLP with batch norm and dropout: --accumulate 3 == --bn-group 80 (240 / 2 / 3)
mlp="--model 784-128-64-10 --bn --dropout 0.1 --batch-size 240 --max-steps 6"
"$RUN" -np 2 -- train --run-dir "$work/acc" $common $mlp --accumulate 3 2>"$work/acc.log" ||
  fail "the --accumulate 3 run failed"
"$RUN" -np 2 -- train --run-dir "$work/grp" $common $mlp --bn-group 40 ||
  fail "the --bn-group 40 run failed"
same_run acc grp step-00000006.ckpt "--accumulate 3 vs --bn-group 40"
grep -q 'accumulate 3: .* 3 micro-batches of 40 samples' "$work/acc.log" ||
  fail "the start-up lines do not describe the micro-batches"
grep -qx 'accumulate = 3' "$work/acc/config.txt" || fail "config.txt lacks accumulate = 3"

# 2. conv + residual block + fc, ghost groups of 10 inside micro-batches of 20
cnn="--model in:1x28x28,conv:4k3p1,bn,relu,res:8s2,maxpool:2,fc:16,bn,relu,fc:10
  --batch-size 80 --max-steps 4 --bn-group 10"
"$RUN" -np 2 -- train --run-dir "$work/cacc" $common $cnn --accumulate 2 ||
  fail "the convolutional --accumulate 2 run failed"
"$RUN" -np 2 -- train --run-dir "$work/cgrp" $common $cnn ||
  fail "the convolutional --bn-group 10 run failed"
same_run cacc cgrp step-00000004.ckpt "conv: --accumulate 2 --bn-group 10 vs --bn-group 10"

# 3. refusals: exit 2, the option named, what is allowed, no run directory
refused() { # WHAT PATTERN OPTIONS...
  what=$1 pattern=$2
  shift 2
  if "$RUN" -np 2 -- train --run-dir "$work/bad" $common "$@" 2>"$work/bad.log"; then
    fail "$what was accepted"
  fi
  grep -q -- "$pattern" "$work/bad.log" || { cat "$work/bad.log" >&2; fail "$what: no '$pattern' in the message"; }
  [ ! -e "$work/bad" ] || fail "$what: the run directory was created"
}
refused "--accumulate 7 (slices of 120)" \
  "--accumulate: 7 micro-batches do not split a rank's slice of 120 samples.*allowed.*1, 2, 3, 4, 5, 6, 8, 10" \
  --batch-size 240 --accumulate 7
refused "--accumulate 0" "--accumulate" --batch-size 240 --accumulate 0
refused "--accumulate 4 with a batch schedule to 100 (slices of 50)" \
  "--accumulate: 4 micro-batches do not split a rank's slice of 50 samples (global batch 100" \
  --batch-size 240 --batch-schedule 1:100 --epochs 2 --accumulate 4
refused "--bn-group larger than a micro-batch" "--bn-group: ghost groups of 50 .* micro-batch of 40" \
  --batch-size 240 --accumulate 3 --bn-group 50

# 4. stopped after 4 steps and resumed to 8: the uninterrupted run's bits
res="--model 784-64-10 --bn --dropout 0.1 --batch-size 240 --accumulate 2 --optimizer adamw --lr 1e-3"
"$RUN" -np 2 -- train --run-dir "$work/whole" $common $res --max-steps 8 ||
  fail "the uninterrupted accumulated run failed"
"$RUN" -np 2 -- train --run-dir "$work/part" $common $res --max-steps 4 ||
  fail "the first half of the accumulated run failed"
"$RUN" -np 2 -- train --run-dir "$work/part" --resume auto --max-steps 8 --quiet ||
  fail "resuming the accumulated run failed"
tensor_sums "$work/whole/checkpoints/step-00000008.ckpt" >"$work/sums.whole"
tensor_sums "$work/part/checkpoints/step-00000008.ckpt" >"$work/sums.part"
cmp -s "$work/sums.whole" "$work/sums.part" || fail "the resumed accumulated run ended elsewhere"
if "$RUN" -np 2 -- train --run-dir "$work/part" --resume auto --max-steps 10 --accumulate 4 \
  --quiet 2>"$work/change.log"; then
  fail "--accumulate changed on resume"
fi
grep -q -- "--accumulate: '4' differs from the resumed run's '2'" "$work/change.log" ||
  fail "the refused change of --accumulate does not say why"
echo "ok"
