#!/bin/sh
# End to end: a sweep killed in the middle and run again repeats nothing and
# loses nothing: the finished point is skipped, the interrupted one resumes
# from its checkpoints, the rest start; a diverged point is marked and the
# sweep goes on.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist
SWEEP="$top_srcdir/launch/ddtrain-sweep"

cat >"$work/spec.txt" <<SPEC
# three small runs
base = --data fashion-mnist --train-samples 3072 --test-samples 500 --model 784-64-10 --epochs 4 --ckpt-every 8 --eval-every 0
batch-size = 64 96 128
SPEC
setsid "$SWEEP" "$work/spec.txt" --out "$work/sweep" -np 1 >"$work/first.log" 2>&1 &
pid=$!
track $pid
# wait until the first point is done and the second has a checkpoint
i=0
until [ -f "$work/sweep/batch-size=64/done" ] && ls "$work/sweep/batch-size=96/checkpoints" 2>/dev/null | grep -q '^step-'; do
  i=$((i + 1))
  [ $i -lt 600 ] || fail "the sweep never reached its second point: $(cat "$work/first.log")"
  sleep 0.1
done
kill -KILL -- -$pid 2>/dev/null || kill -KILL $pid
wait $pid 2>/dev/null || true
pkill -KILL -f "run-dir $work/sweep" 2>/dev/null || true
[ ! -f "$work/sweep/batch-size=96/done" ] || fail "the second point finished before the kill"
sum_before=$(cksum <"$work/sweep/batch-size=64/metrics.jsonl")

"$SWEEP" "$work/spec.txt" --out "$work/sweep" -np 1 >"$work/second.log" 2>&1 \
  || fail "the second sweep failed: $(cat "$work/second.log")"
grep -q "batch-size=64: done before, skipped" "$work/second.log" || fail "the finished point ran again"
grep -q "batch-size=96: resuming" "$work/second.log" || fail "the interrupted point did not resume"
grep -q "batch-size=128: starting" "$work/second.log" || fail "the last point did not start"
[ "$(cksum <"$work/sweep/batch-size=64/metrics.jsonl")" = "$sum_before" ] || fail "the finished point's metrics changed"
for b in 64 96 128; do
  grep -q finished "$work/sweep/batch-size=$b/done" || fail "batch $b is not finished"
done
# the resumed run logged every step once
steps=$(grep -c '"kind":"train"' "$work/sweep/batch-size=96/metrics.jsonl")
[ "$(grep '"kind":"train"' "$work/sweep/batch-size=96/metrics.jsonl" | sed 's/.*"step":\([0-9]*\).*/\1/' | sort -u | wc -l)" = "$steps" ] \
  || fail "the resumed point logged steps twice"

# a diverging point is marked and the sweep goes on
cat >"$work/div.txt" <<SPEC
base = --data fashion-mnist --train-samples 4096 --test-samples 200 --model 784-64-10 --no-bn --epochs 1 --batch-size 32 --optimizer sgd --momentum 0.99
lr = 0.01 100
SPEC
"$SWEEP" "$work/div.txt" --out "$work/div" -np 1 >"$work/div.log" 2>&1 || fail "the divergence sweep failed: $(cat "$work/div.log")"
grep -q diverged "$work/div/lr=100/done" || fail "lr=100 was not marked diverged: $(cat "$work/div.log")"
grep -q finished "$work/div/lr=0.01/done" || fail "lr=0.01 did not finish"
echo "sweep: skip, resume, start, diverged"
