#!/bin/sh
# End to end under mpirun -np 2: a run stopped by SIGTERM and resumed, and a
# run whose rank was killed with SIGKILL and resumed with --resume auto, end
# byte for byte where the uninterrupted run ends (parameters, optimizer state,
# metrics), also when a sharded run is resumed without sharding; damaged
# checkpoints are rejected with the right message and the
# previous good one is used.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

args="--data fashion-mnist --train-samples 6144 --test-samples 512 --model 784-256-256-10
  --bn --dropout 0.1 --batch-size 64 --epochs 3 --log-every 5 --ckpt-every 20
  --ckpt-keep 10 --lr 0.05 --optimizer adamw --lr-decay cosine --quiet"
final=step-00000288.ckpt

"$RUN" -np 2 -- train --run-dir "$work/a" $args || fail "the uninterrupted run failed"
[ -f "$work/a/checkpoints/$final" ] || fail "no final checkpoint $final"
tensor_sums "$work/a/checkpoints/$final" >"$work/sums.a"
metrics_no_timing "$work/a/metrics.jsonl" >"$work/metrics.a"

same_as_a() {
  tensor_sums "$work/$1/checkpoints/$final" >"$work/sums.$1"
  cmp -s "$work/sums.a" "$work/sums.$1" || { diff "$work/sums.a" "$work/sums.$1" >&2; fail "$2: parameters differ from the uninterrupted run"; }
  metrics_no_timing "$work/$1/metrics.jsonl" >"$work/metrics.$1"
  cmp -s "$work/metrics.a" "$work/metrics.$1" || { diff "$work/metrics.a" "$work/metrics.$1" >&2; fail "$2: metrics differ"; }
}

# 1. SIGTERM to mpirun: checkpoint, exit 0, resume
"$RUN" -np 2 -- train --run-dir "$work/b" $args &
pid=$!
track $pid
wait_for_step "$work/b" 45
kill -TERM $pid
wait $pid || fail "SIGTERM: the run exited with status $?"
ls "$work/b/checkpoints" | grep -q '^step-' || fail "SIGTERM left no checkpoint"
[ ! -f "$work/b/checkpoints/$final" ] || fail "SIGTERM came too late to test anything"
"$RUN" -np 2 -- train --run-dir "$work/b" --resume auto --quiet || fail "resume after SIGTERM failed"
same_as_a b "SIGTERM and resume"

# 1b. Signals until the very end: a checkpoint request (SIGUSR1) to the
# launcher every 20 ms from the first logged step until the job has exited.
# mpirun forwards them; one that lands while it tears down must not kill it
# (it did: status 138, after a clean run; the stop's resent SIGUSR2 the same).
for r in 1 2 3 4; do
  "$RUN" -np 2 -- train --run-dir "$work/u$r" --data fashion-mnist --train-samples 1024 \
    --test-samples 256 --model 784-32-10 --epochs 1 --batch-size 128 --log-every 1 --quiet &
  pid=$!
  track $pid
  wait_for_step "$work/u$r" 1
  while running $pid; do
    kill -USR1 $pid 2>/dev/null || true
    sleep 0.02
  done
  wait $pid || fail "checkpoint requests until the end: run $r exited with status $?"
  [ -f "$work/u$r/finished" ] || fail "checkpoint requests until the end: run $r did not finish"
done

# 2. SIGKILL of one rank mid-run: the job ends (non-zero), resume auto
"$RUN" -np 2 -- train --run-dir "$work/c" $args &
pid=$!
track $pid
wait_for_step "$work/c" 70
victim=$(pgrep -f "ddtrain train --run-dir $work/c" | tail -n 1)
[ -n "$victim" ] || fail "no rank to kill"
kill -KILL "$victim"
set +e
wait $pid
status=$?
set -e
[ "$status" -ne 0 ] || fail "the job reported success after a rank was killed"
# a partial file from a write in progress is never used
: >"$work/c/checkpoints/step-00099999.ckpt.tmp.1"
"$RUN" -np 2 -- train --run-dir "$work/c" --resume auto --quiet 2>"$work/c.err" \
  || fail "resume after SIGKILL failed: $(cat "$work/c.err")"
[ ! -e "$work/c/checkpoints/step-00099999.ckpt.tmp.1" ] || fail "the killed write's temporary was left"
same_as_a c "SIGKILL and resume auto"

# 3. damaged checkpoints: a flipped bit and a truncation are caught
ck="$work/a/checkpoints/step-00000280.ckpt"
cp "$ck" "$work/flipped.ckpt"
printf '\377' | dd of="$work/flipped.ckpt" bs=1 seek=5000 conv=notrunc 2>/dev/null
set +e
"$DDTRAIN" inspect "$work/flipped.ckpt" >/dev/null 2>"$work/err"
[ $? -eq 2 ] || fail "inspect accepted a damaged checkpoint"
grep -q "checksum mismatch" "$work/err" || fail "bit flip: $(cat "$work/err")"
head -c 3000 "$ck" >"$work/short.ckpt"
"$DDTRAIN" inspect "$work/short.ckpt" >/dev/null 2>"$work/err"
grep -q "truncated" "$work/err" || fail "truncation: $(cat "$work/err")"
printf 'not a checkpoint at all, just text' >"$work/text.ckpt"
"$DDTRAIN" inspect "$work/text.ckpt" >/dev/null 2>"$work/err"
grep -q "wrong magic" "$work/err" || fail "magic: $(cat "$work/err")"
set -e

# the newest checkpoint damaged: resume auto warns and continues from the one
# before, and still ends where the uninterrupted run ended
mkdir -p "$work/d"
cp "$work/a/config.txt" "$work/a/metrics.jsonl" "$work/d/"
mkdir "$work/d/checkpoints"
cp "$work/a/checkpoints/step-00000260.ckpt" "$work/a/checkpoints/step-00000280.ckpt" "$work/d/checkpoints/"
printf 'step-00000280.ckpt\n' >"$work/d/checkpoints/latest"
printf '\377' | dd of="$work/d/checkpoints/step-00000280.ckpt" bs=1 seek=5000 conv=notrunc 2>/dev/null
"$RUN" -np 2 -- train --run-dir "$work/d" --resume auto --quiet 2>"$work/d.err" \
  || fail "resume with a damaged newest checkpoint failed: $(cat "$work/d.err")"
grep -q "damaged" "$work/d.err" || fail "no warning about the damaged checkpoint"
grep -q "step-00000260.ckpt" "$work/d.err" || fail "did not fall back to step 260: $(cat "$work/d.err")"
same_as_a d "fallback to the previous checkpoint"

# 3. the optimizer state of a sharded run (gathered into its checkpoints)
# resumed by a replicated one: with two ranks both give the same bits
cp -r "$work/a" "$work/e"
"$RUN" -np 2 -- train --run-dir "$work/e" --resume "$work/e/checkpoints/step-00000160.ckpt" \
  --no-shard-optimizer --quiet 2>"$work/e.err" ||
  fail "replicated resume of a sharded run failed: $(cat "$work/e.err")"
same_as_a e "sharded run resumed replicated"

# a math-changing option is refused on resume
set +e
"$DDTRAIN" train --run-dir "$work/d" --resume auto --lr 0.5 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] || fail "--lr on resume exited $status"
grep -q "cannot change on resume" "$work/err" || fail "no message for --lr on resume: $(cat "$work/err")"
echo "resume after SIGTERM and SIGKILL, sharded to replicated, damaged-checkpoint fallback: byte-identical"
