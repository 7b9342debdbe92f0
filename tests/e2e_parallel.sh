#!/bin/sh
# End to end under mpirun: ghost batch norm makes the math independent of the
# rank count; an uneven split still gives the exact mean gradient; overlapped
# and blocking reduction give the same parameters; the sharded optimizer
# (reduce-scatter, 1/N of the update per rank, all-gather) matches the
# replicated one, and its checkpoints hold the whole optimizer state; shards
# summed in shared memory match shards sent as messages bit for bit, and a
# machine without the shared-memory window falls back to messages;
# replicas stay identical (a checksum every step would abort the job
# otherwise).
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
# 4. sharded vs replicated optimizer, small buckets (pieces cut tensors):
# with two ranks every sum is a + b either way, so SGD ends bit for bit equal,
# optimizer state included (gathered from both shards into the checkpoint)
for mode in shard-optimizer no-shard-optimizer; do
  "$RUN" -np 2 -- train --run-dir "$work/$mode" $common --model 784-256-256-10 --bn \
    --batch-size 64 --bucket-kb 64 --$mode || fail "$mode run failed"
done
tensor_sums "$work/shard-optimizer/checkpoints/step-00000050.ckpt" >"$work/sa"
tensor_sums "$work/no-shard-optimizer/checkpoints/step-00000050.ckpt" >"$work/sb"
grep -q 'fc1.weight.m' "$work/sa" || fail "the sharded checkpoint has no momentum of fc1.weight"
cmp -s "$work/sa" "$work/sb" || fail "sharded and replicated SGD ended with different parameters or momenta"
same_losses "$work/shard-optimizer/metrics.jsonl" "$work/no-shard-optimizer/metrics.jsonl" 0 "sharded vs replicated SGD"

# LAMB (norms of tensors split between ranks summed across them) and SGD on
# three ranks (sums in another order): the same losses to rounding
for point in lamb:2:0.002 sgd:3:0.05; do
  o=${point%%:*} rest=${point#*:}
  n=${rest%%:*} lr=${rest#*:}
  for mode in shard-optimizer no-shard-optimizer; do
    "$RUN" -np $n -- train --run-dir "$work/$o-$mode" $common --model 784-256-256-10 --bn \
      --batch-size 60 --bucket-kb 64 --optimizer $o --lr $lr --$mode ||
      fail "$o $mode run on $n ranks failed"
  done
  same_losses "$work/$o-shard-optimizer/metrics.jsonl" "$work/$o-no-shard-optimizer/metrics.jsonl" \
    1e-4 "sharded vs replicated $o on $n ranks"
done

# 5. shards summed in shared memory (the default on one machine) or sent as
# messages: both sum in rank order, so even on three ranks (pieces of
# unequal length, every bucket cut between all three) the bits agree
for mode in shared-memory no-shared-memory; do
  "$RUN" -np 3 -- train --run-dir "$work/$mode" $common --model 784-256-256-10 --bn \
    --batch-size 60 --bucket-kb 64 --optimizer adam --lr 0.002 --$mode ||
    fail "$mode run on 3 ranks failed"
done
tensor_sums "$work/shared-memory/checkpoints/step-00000050.ckpt" >"$work/sa"
tensor_sums "$work/no-shared-memory/checkpoints/step-00000050.ckpt" >"$work/sb"
cmp -s "$work/sa" "$work/sb" || fail "shared-memory and message reductions ended with different parameters or moments"
same_losses "$work/shared-memory/metrics.jsonl" "$work/no-shared-memory/metrics.jsonl" 0 "shared memory vs messages"

# when MPI cannot make the window (here: no shared-memory window component),
# the job says so and sends messages instead of ending
OMPI_MCA_osc=pt2pt "$RUN" -np 3 -- train --run-dir "$work/no-window" $common \
  --model 784-256-256-10 --bn --batch-size 60 --bucket-kb 64 --optimizer adam --lr 0.002 \
  2>"$work/no-window.err" || { cat "$work/no-window.err" >&2; fail "a run without a shared-memory window failed"; }
grep -q 'no shared-memory window.*as messages instead' "$work/no-window.err" ||
  fail "a run without a shared-memory window did not say it fell back to messages"
tensor_sums "$work/no-window/checkpoints/step-00000050.ckpt" >"$work/sc"
cmp -s "$work/sb" "$work/sc" || fail "the fallback to messages ended with different parameters"

echo "ghost BN, uneven split, overlap, sharded optimizer, shared memory and replica checks passed"
