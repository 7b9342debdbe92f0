#!/bin/sh
# End to end under mpirun: ghost batch norm makes the math independent of the
# rank count; an uneven split still gives the exact mean gradient; overlapped
# and blocking allreduce give the same parameters; replicas stay identical
# (a checksum every step would abort the job otherwise).
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

common="--data fashion-mnist --train-samples 4096 --test-samples 512 --eval-every 0
  --log-every 1 --max-steps 50 --check-every 1 --quiet --ckpt-every-epochs 0 --lr 0.05"

# 1. ghost batch norm (groups of 16) with dropout: N = 1, 2, 4 agree
for n in 1 2 4; do
  "$RUN" -np $n -- train --run-dir "$work/ghost$n" $common --model 784-128-64-10 --bn \
    --dropout 0.1 --bn-group 16 --batch-size 64 || fail "ghost BN run with $n ranks failed"
done
same_losses "$work/ghost1/metrics.jsonl" "$work/ghost2/metrics.jsonl" 1e-4 "bn-group N=1 vs 2"
same_losses "$work/ghost1/metrics.jsonl" "$work/ghost4/metrics.jsonl" 1e-4 "bn-group N=1 vs 4"

# 2. a batch of 63 split 32 + 31 (no batch norm: the slices' math is
# independent) matches one rank
for n in 1 2; do
  "$RUN" -np $n -- train --run-dir "$work/uneven$n" $common --model 784-128-10 --no-bn \
    --batch-size 63 || fail "uneven run with $n ranks failed"
done
same_losses "$work/uneven1/metrics.jsonl" "$work/uneven2/metrics.jsonl" 1e-4 "uneven split"

# 3. overlapped and blocking allreduce, small buckets: identical parameters
for mode in overlap no-overlap; do
  "$RUN" -np 2 -- train --run-dir "$work/$mode" $common --model 784-256-256-10 --bn \
    --batch-size 64 --bucket-kb 64 --$mode || fail "$mode run failed"
done
tensor_sums "$work/overlap/checkpoints/step-00000050.ckpt" >"$work/sa"
tensor_sums "$work/no-overlap/checkpoints/step-00000050.ckpt" >"$work/sb"
cmp -s "$work/sa" "$work/sb" || fail "overlapped and blocking allreduce ended with different parameters"
same_losses "$work/overlap/metrics.jsonl" "$work/no-overlap/metrics.jsonl" 0 "overlap vs blocking"
echo "ghost BN, uneven split, overlap and replica checks passed"
