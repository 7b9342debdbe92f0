#!/bin/sh
# End to end under mpirun: ghost batch norm makes the math independent of the
# rank count; an uneven split still gives the exact mean gradient; overlapped
# and blocking reduction give the same parameters; the sharded optimizer
# (reduce-scatter, 1/N of the update per rank, all-gather) matches the
# replicated one, and its checkpoints hold the whole optimizer state; shards
# summed in shared memory match shards sent as messages bit for bit, and a
# machine without the shared-memory window falls back to messages, and
# messages over TCP (between hosts; loopback here) give the same bits;
# replicas stay identical (a checksum every step would abort the job
# otherwise).
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

common="--data fashion-mnist --train-samples 4096 --test-samples 512 --eval-every 0
  --log-every 1 --max-steps 50 --check-every 1 --quiet --ckpt-every-epochs 0 --lr 0.05"

# Runs MODE_A and MODE_B on NP ranks with the same options and fails unless
# they end with the same bits: tensors (parameters and optimizer state) in the
# step-50 checkpoint, and every logged loss. Leaves the sums in sa and sb.
same_bits() { # NP MODE_A MODE_B WHAT OPTIONS...
  np=$1 a=$2 b=$3 what=$4
  shift 4
  for mode in $a $b; do
    "$RUN" -np $np -- train --run-dir "$work/$mode" $common "$@" --$mode ||
      fail "$mode run on $np ranks failed"
  done
  tensor_sums "$work/$a/checkpoints/step-00000050.ckpt" >"$work/sa"
  tensor_sums "$work/$b/checkpoints/step-00000050.ckpt" >"$work/sb"
  cmp -s "$work/sa" "$work/sb" || fail "$what ended with different parameters or optimizer state"
  same_losses "$work/$a/metrics.jsonl" "$work/$b/metrics.jsonl" 0 "$what"
}

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
same_bits 2 overlap no-overlap "overlapped vs blocking allreduce" \
  --model 784-256-256-10 --bn --batch-size 64 --bucket-kb 64
# 4. sharded vs replicated optimizer, small buckets (pieces cut tensors):
# with two ranks every sum is a + b either way, so SGD ends bit for bit equal,
# optimizer state included (gathered from both shards into the checkpoint)
same_bits 2 shard-optimizer no-shard-optimizer "sharded vs replicated SGD" \
  --model 784-256-256-10 --bn --batch-size 64 --bucket-kb 64
grep -q 'fc1.weight.m' "$work/sa" || fail "the sharded checkpoint has no momentum of fc1.weight"

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
same_bits 3 shared-memory no-shared-memory "shared memory vs messages" \
  --model 784-256-256-10 --bn --batch-size 60 --bucket-kb 64 --optimizer adam --lr 0.002

# when MPI cannot make the window (here: no shared-memory window component),
# the job says so and sends messages instead of ending
OMPI_MCA_osc=pt2pt "$RUN" -np 3 -- train --run-dir "$work/no-window" $common \
  --model 784-256-256-10 --bn --batch-size 60 --bucket-kb 64 --optimizer adam --lr 0.002 \
  2>"$work/no-window.err" || { cat "$work/no-window.err" >&2; fail "a run without a shared-memory window failed"; }
grep -q 'no shared-memory window.*as messages instead' "$work/no-window.err" ||
  fail "a run without a shared-memory window did not say it fell back to messages"
tensor_sums "$work/no-window/checkpoints/step-00000050.ckpt" >"$work/sc"
cmp -s "$work/sb" "$work/sc" || fail "the fallback to messages ended with different parameters"

# 6. across hosts: the messages path over TCP (the transport between
# machines) instead of shared memory, loopback only, gives the bits of the
# shared-memory default (sa, section 5)
"$RUN" -np 3 --mca btl tcp,self --mca btl_tcp_if_include lo --mca oob_tcp_if_include lo -- \
  train --run-dir "$work/tcp" $common --model 784-256-256-10 --bn --batch-size 60 --bucket-kb 64 \
  --optimizer adam --lr 0.002 --no-shared-memory 2>"$work/tcp.err" ||
  { cat "$work/tcp.err" >&2; fail "the run over TCP failed"; }
tensor_sums "$work/tcp/checkpoints/step-00000050.ckpt" >"$work/sd"
cmp -s "$work/sa" "$work/sd" || fail "messages over TCP ended with other parameters than shared memory"
same_losses "$work/shared-memory/metrics.jsonl" "$work/tcp/metrics.jsonl" 0 "shared memory vs TCP"

echo "ghost BN, uneven split, overlap, sharded optimizer, shared memory, TCP and replica checks passed"
