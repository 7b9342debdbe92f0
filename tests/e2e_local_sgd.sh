#!/bin/sh
# Local SGD end to end under mpirun (--local-steps, --local-steps-after,
# --local-average-optimizer): one local step with plain SGD is data-parallel
# SGD at the same per-rank batch to rounding; the average is the exact mean
# of the ranks' own parameters (summed in rank order, divided by the rank
# count: the checkpoint holds both, read back bit for bit) and the same bits
# on every rank; a run stopped in the middle of a local period resumes to the
# bits of the uninterrupted run; another rank count is refused in the middle
# of a period and takes the means at its end; bad options are refused.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist
PY=/usr/bin/python3
"$PY" -c 'import numpy' 2>/dev/null || { echo "SKIP: $PY has no numpy" >&2; exit 77; }
TOOL="$top_builddir/tests/ckpt_tensors"

common="--data fashion-mnist --train-samples 1536 --test-samples 256 --model 784-48-10 --bn
  --batch-size 48 --log-every 1 --check-every 1 --quiet --ckpt-every-epochs 0"

# Dumps checkpoint $1's tensors into directory $2 (listing in $2/list).
dump() {
  mkdir -p "$2"
  "$TOOL" "$1" "$2" >"$2/list" || fail "ckpt_tensors $1"
}
# load(DIR): a dump's tensors as numpy arrays keyed by (group, name)
cat >"$work/dumped.py" <<'EOF'
import numpy as np
def load(d):
    out = {}
    for line in open(d + "/list"):
        if line.startswith("tensor "):
            _, idx, group, name = line.split()[:4]
            out[(group, name)] = np.fromfile("%s/%s.f32" % (d, idx), dtype="<f4")
    return out
EOF

# 1. --local-steps 1 with plain SGD (no momentum) against data-parallel SGD
# at the same per-rank batch: the mean of the ranks' steps is the step on
# the mean gradient, and the running statistics' mean is their update from
# the summed batch statistics, up to float rounding
for mode in dp local; do
  extra=""
  [ $mode = local ] && extra="--local-steps 1"
  "$RUN" -np 2 -- train --run-dir "$work/h1$mode" $common --momentum 0 --max-steps 20 \
    --ckpt-every 20 $extra || fail "H = 1: the $mode run failed"
done
same_losses "$work/h1dp/metrics.jsonl" "$work/h1local/metrics.jsonl" 1e-4 "H = 1 vs data-parallel"
dump "$work/h1dp/checkpoints/step-00000020.ckpt" "$work/d_dp"
dump "$work/h1local/checkpoints/step-00000020.ckpt" "$work/d_local"
"$PY" - "$work/d_dp" "$work/d_local" "$work" <<'EOF' || fail "H = 1: the parameters are not data-parallel SGD's"
import sys, numpy as np
sys.path.insert(0, sys.argv[3])
from dumped import load
a, b = load(sys.argv[1]), load(sys.argv[2])
for k, x in a.items():
    if k[0] not in ("param", "bn"):
        continue
    y = b[k]
    err = np.max(np.abs(x - y) / (np.abs(x) + 1e-3))
    if err > 1e-4:
        sys.exit("%s: relative difference %g" % (k, err))
EOF

# 2. three ranks (a mean divided by 3 is rounded), H = 4: a checkpoint two
# steps into a period (step 6) holds every rank's own state, and the means
# of the ordinary fields are exactly (r0 + r1 + r2) / 3 in float; the one
# at the end of a period (step 8) holds the same bits on every rank
# (--check-every 1 also compares them at every average);
# --local-average-optimizer makes the optimizer states agree there too
"$RUN" -np 3 -- train --run-dir "$work/mean" $common --local-steps 4 --max-steps 8 \
  --ckpt-every 2 --local-average-optimizer || fail "the 3-rank local SGD run failed"
dump "$work/mean/checkpoints/step-00000006.ckpt" "$work/d6"
dump "$work/mean/checkpoints/step-00000008.ckpt" "$work/d8"
"$PY" - "$work/d6" "$work/d8" "$work" <<'EOF' || fail "the average is not the exact mean of the ranks"
import sys, numpy as np
sys.path.insert(0, sys.argv[3])
from dumped import load
mid, end = load(sys.argv[1]), load(sys.argv[2])
n = 3
for (group, name), x in mid.items():
    if group not in ("param", "bn", "optimizer"):
        continue
    ranks = [mid[("rank%d.%s" % (r, group), name)] for r in range(n)]
    if all(np.array_equal(ranks[0], r) for r in ranks[1:]) and group == "param":
        sys.exit("%s: the ranks agree in the middle of a period" % name)
    s = ranks[0].copy()
    for r in ranks[1:]:
        s = (s + r).astype(np.float32)
    want = (s / np.float32(n)).astype(np.float32)
    if want.tobytes() != x.tobytes():
        sys.exit("%s %s: not the rank-order mean (max diff %g)" % (group, name, np.max(np.abs(want - x))))
for (group, name), x in end.items():
    if group not in ("param", "bn", "optimizer"):
        continue
    for r in range(n):
        if end[("rank%d.%s" % (r, group), name)].tobytes() != x.tobytes():
            sys.exit("%s %s: rank %d differs from the mean at the end of a period" % (group, name, r))
EOF

# 3. stopped two steps into a period (step 6: the final evaluation sees the
# mean, then every rank's own model goes on) and resumed on as many ranks:
# the bits of the uninterrupted run
lopts="--local-steps 4 --max-steps 20 --ckpt-every 20"
"$RUN" -np 2 -- train --run-dir "$work/whole" $common $lopts || fail "the uninterrupted run failed"
"$RUN" -np 2 -- train --run-dir "$work/part" $common --local-steps 4 --max-steps 6 ||
  fail "the run to step 6 failed"
"$RUN" -np 2 -- train --run-dir "$work/part" --resume auto --max-steps 20 --ckpt-every 20 ||
  fail "the resume from step 6 failed"
tensor_sums "$work/whole/checkpoints/step-00000020.ckpt" >"$work/sa"
tensor_sums "$work/part/checkpoints/step-00000020.ckpt" >"$work/sb"
cmp -s "$work/sa" "$work/sb" || fail "a resume in the middle of a local period ended with other bits"
grep -c 'rank1' "$work/sa" >/dev/null || fail "the checkpoint has no rank states"
same_losses "$work/whole/metrics.jsonl" "$work/part/metrics.jsonl" 0 "resumed local SGD"
# the analysis commands read the means: eval of the step-6 checkpoint is
# the run's own evaluation at step 6
"$DDTRAIN" eval "$work/part/checkpoints/step-00000006.ckpt" --test-samples 256 --json >"$work/ev6" ||
  fail "eval of a mid-period checkpoint failed"
want=$(grep '"kind":"eval","step":6' "$work/part/metrics.jsonl")
got=$(cat "$work/ev6")
a=$(json_field "$want" test_loss) b=$(json_field "$got" test_loss)
[ -n "$a" ] && [ -n "$b" ] || fail "no test_loss: run '$want', eval '$got'"
awk -v a="$a" -v b="$b" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * (a < 0 ? -a : a)) }' ||
  fail "eval of the mid-period checkpoint ($b) is not the run's evaluation of the mean ($a)"

# 4. another rank count: refused two steps into a period, taken at its end
"$RUN" -np 3 -- train --run-dir "$work/part" --resume "$work/part/checkpoints/step-00000006.ckpt" \
  >"$work/out" 2>&1 && fail "a mid-period checkpoint of 2 ranks resumed on 3"
grep -q 'middle of a local SGD period' "$work/out" || fail "no reason for the refused rank count: $(cat "$work/out")"
"$RUN" -np 2 -- train --run-dir "$work/end" $common --local-steps 4 --max-steps 8 ||
  fail "the run to step 8 failed"
"$RUN" -np 3 -- train --run-dir "$work/end" --resume auto --max-steps 12 >"$work/out" 2>&1 ||
  fail "the end-of-period checkpoint on 3 ranks was refused: $(cat "$work/out")"
grep -q "starts from the checkpoint's means" "$work/out" || fail "no word of the means on 3 ranks"

# 5. post-local SGD: data-parallel for the first epoch (noise scale measured),
# then local steps; the log says what it saves
"$RUN" -np 2 -- train --run-dir "$work/post" $common --epochs 2 --local-steps 4 \
  --local-steps-after 1 --noise-every 1 >"$work/out" 2>&1 || fail "post-local SGD failed"
grep -q 'after 1 epoch of data-parallel SGD (post-local SGD)' "$work/out" || fail "no post-local line"
grep -q 'effective batch 4 x 48 = 192' "$work/out" || fail "no effective batch in the log"
grep -q 'local SGD: 32 local steps, 8 averages' "$work/out" || fail "no count of the averages: $(grep 'local SGD:' "$work/out")"
grep '"step":32,' "$work/post/metrics.jsonl" | grep -q '"noise_scale":[0-9]' ||
  fail "no noise scale in the data-parallel epoch"

# 6. bad options: refused with exit status 2 and a message naming the option
refuse() { # WHAT MESSAGE OPTIONS...
  what=$1 msg=$2
  shift 2
  set +e
  "$DDTRAIN" train --run-dir "$work/bad" $common "$@" >"$work/out" 2>&1
  rc=$?
  set -e
  [ $rc -eq 2 ] || fail "$what: exit status $rc, expected 2"
  grep -q -- "$msg" "$work/out" || fail "$what: no '$msg' in: $(cat "$work/out")"
  [ ! -e "$work/bad" ] || fail "$what: the run directory was made"
}
refuse "after without steps" "--local-steps-after: 2 epochs" --local-steps-after 2 --epochs 4
refuse "average optimizer without steps" "--local-average-optimizer: only with" --local-average-optimizer
refuse "sharded local SGD" "--shard-optimizer: not with --local-steps 2" --local-steps 2 --shard-optimizer
printf 'local-steps = 2\nshard-optimizer = true\n' >"$work/shard.conf"
refuse "sharded local SGD in a config file" "--shard-optimizer: not with --local-steps 2" --config "$work/shard.conf"
refuse "never local" "--local-steps-after: 3 is not below --epochs 3" --local-steps 2 --local-steps-after 3 --epochs 3
refuse "negative" "--local-steps: '-1'" --local-steps -1

# 7. the memory report counts local SGD's buffers (rank 0 gathers every
# rank's parameters and Adam's moments at a checkpoint): a model large
# enough for them to dominate, and a peak RSS within the budget plus what
# the process held before it (without the term the peak is 3x that)
"$RUN" -np 2 -- train --run-dir "$work/mem" --data fashion-mnist --train-samples 1024 \
  --test-samples 256 --model 784-1024-1024-10 --optimizer adam --batch-size 64 --epochs 2 \
  --local-steps 2 --quiet 2>"$work/mem.err" || fail "the memory run failed: $(cat "$work/mem.err")"
line=$(grep "memory per rank" "$work/mem.err") || fail "no memory report: $(cat "$work/mem.err")"
printf '%s\n' "$line" | grep -q " + local SGD [0-9.]*;" || fail "the memory report does not name local SGD: $line"
peak=$(printf '%s\n' "$line" | sed -n 's/.*peak RSS \([0-9.]*\) MiB.*/\1/p')
budget=$(printf '%s\n' "$line" | sed -n 's/.*budget \([0-9.]*\) MiB.*/\1/p')
held=$(printf '%s\n' "$line" | sed -n 's/.*held \([0-9.]*\) MiB.*/\1/p')
# (not under AddressSanitizer, whose shadow memory and quarantine of freed
# blocks add to every process's RSS)
if [ -z "${ASAN_OPTIONS:-}" ]; then
  num_lt "$peak" "$(awk -v b="$budget" -v h="$held" 'BEGIN { print 1.5 * (b + h) }')" \
    || fail "peak RSS $peak MiB is far above the budget $budget + $held MiB: $line"
fi
echo "local SGD: all checks passed"
