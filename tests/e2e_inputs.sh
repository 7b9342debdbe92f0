#!/bin/sh
# End to end: what the program is handed. A FIFO or a directory where a file
# belongs fails at once (never hangs) with a message naming it; --resume auto
# on a run killed before its first checkpoint starts over; the checkpoint
# store clears a killed writer's temporaries; inspect's own options; an early
# SIGTERM to launch/ddtrain-run stops cleanly.
. "$(dirname "$0")/lib.sh"

# A small CSV data set (4 features, 3 classes) and its test split.
awk 'BEGIN { for (i = 0; i < 90; i++) printf "%d,%d,%d,%d,%d\n", i % 3, (i * 7) % 11, (i * 5) % 13, i % 3 * 4, (i * 3) % 7 }' \
  >"$work/data_train.csv"
cp "$work/data_train.csv" "$work/data_test.csv"
small="--data $work/data_train.csv --classes 3 --model 4-8-3 --batch-size 16 --quiet"

# expect_refused PATH ARGS...: exit 2 within 20 s, the message names PATH and
# says it is not a regular file.
expect_refused() {
  what=$1
  shift
  set +e
  timeout 20 "$DDTRAIN" "$@" >"$work/out" 2>"$work/err"
  status=$?
  set -e
  [ "$status" -ne 124 ] || fail "'$*' hung on $what"
  [ "$status" -eq 2 ] || fail "'$*' exited $status, expected 2 ($(cat "$work/err"))"
  grep -qF -- "$what: not a regular file" "$work/err" ||
    fail "'$*': the message does not say $what is not a regular file: $(cat "$work/err")"
}

# 1. non-regular files, each kind where every reader takes a file
"$DDTRAIN" train --run-dir "$work/good" $small --epochs 1 2>"$work/err" ||
  fail "the small run failed: $(cat "$work/err")"
ck=$(ls "$work"/good/checkpoints/step-*.ckpt | tail -n 1)
mkfifo "$work/fifo" "$work/fifo.csv"
mkdir "$work/dir" "$work/dir.csv" "$work/idx-fifo" "$work/idx-dir"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  mkfifo "$work/idx-fifo/$f"
  mkdir "$work/idx-dir/$f"
done
for kind in fifo dir; do
  p="$work/$kind"
  expect_refused "$p" train --run-dir "$work/r-$kind" --config "$p"
  expect_refused "$p.csv" train --run-dir "$work/r-$kind" --data "$p.csv" --classes 3 --model 4-3
  expect_refused "$work/idx-$kind/train-images-idx3-ubyte" train --run-dir "$work/r-$kind" \
    --data "$work/idx-$kind"
  expect_refused "$p" train --run-dir "$work/r-$kind" --resume "$p"
  expect_refused "$p" train --run-dir "$work/r-$kind" $small --init-from "$p"
  expect_refused "$p" inspect "$p"
done
echo "non-regular files refused"

# 1b. a run directory, its checkpoints folder and its `latest` pointer stand
# for the checkpoint `latest` names; a pointer to anything but a step file
# beside it is not followed
for p in "$work/good" "$work/good/checkpoints" "$work/good/checkpoints/latest"; do
  "$DDTRAIN" inspect "$p" >"$work/out" 2>"$work/err" || fail "inspect $p: $(cat "$work/err")"
  head -n 1 "$work/out" | grep -qxF "checkpoint $ck" ||
    fail "inspect $p did not follow latest to $ck: $(head -n 1 "$work/out")"
done
"$DDTRAIN" eval "$work/good" >"$work/out" 2>"$work/err" || fail "eval of a run directory: $(cat "$work/err")"
grep -q '^test  loss' "$work/out" || fail "eval of a run directory printed no test line: $(cat "$work/out")"
mkdir -p "$work/astray/checkpoints"
printf '../../good/checkpoints/%s\n' "${ck##*/}" >"$work/astray/checkpoints/latest"
expect_refused "$work/astray" inspect "$work/astray"
echo "run directories and latest pointers followed"

# 2. a run killed after metrics.jsonl exists, before its first checkpoint
mkdir "$work/dead"
: >"$work/dead/metrics.jsonl"
timeout 120 "$DDTRAIN" train --run-dir "$work/dead" --resume auto $small --epochs 2 \
  2>"$work/err" || fail "--resume auto without a checkpoint failed: $(cat "$work/err")"
grep -q "no checkpoint yet: starting the run from step 0" "$work/err" ||
  fail "--resume auto did not say it starts over: $(cat "$work/err")"
[ "$(grep -c '"kind":"train"' "$work/dead/metrics.jsonl")" -gt 0 ] || fail "the restarted run logged nothing"
# killed again before a checkpoint: config.txt holds its configuration
rm -r "$work/dead/checkpoints"
timeout 120 "$DDTRAIN" train --run-dir "$work/dead" --resume auto 2>"$work/err" ||
  fail "--resume auto from config.txt failed: $(cat "$work/err")"
ls "$work/dead/checkpoints" | grep -q '^step-' || fail "the restart from config.txt wrote no checkpoint"
# the first attempt's metrics are gone: each step is logged once
dups=$(grep -o '"kind":"[a-z]*","step":[0-9]*' "$work/dead/metrics.jsonl" | sort | uniq -d)
[ -z "$dups" ] || fail "logged twice: $dups"
# ... and a configuration that changes the math is refused, as on a resume
rm -r "$work/dead/checkpoints"
set +e
timeout 60 "$DDTRAIN" train --run-dir "$work/dead" --resume auto --seed 99 2>"$work/err"
status=$?
set -e
[ "$status" -eq 2 ] || fail "a changed --seed over config.txt exited $status"
grep -q -- "--seed: '99' differs" "$work/err" || fail "no message for the changed seed: $(cat "$work/err")"
echo "--resume auto without a checkpoint starts over"

# 3. a checkpoint write killed part-way leaves temporaries: the next start
# removes them (and only them)
: >"$work/good/checkpoints/step-00000099.ckpt.tmp.12345"
: >"$work/good/checkpoints/latest.tmp.12345"
: >"$work/good/checkpoints/keep.tmp.1"
timeout 120 "$DDTRAIN" train --run-dir "$work/good" --resume auto --epochs 2 --quiet 2>"$work/err" ||
  fail "resume over temporaries failed: $(cat "$work/err")"
[ ! -e "$work/good/checkpoints/step-00000099.ckpt.tmp.12345" ] || fail "a stale checkpoint temporary was left"
[ ! -e "$work/good/checkpoints/latest.tmp.12345" ] || fail "a stale latest temporary was left"
[ -e "$work/good/checkpoints/keep.tmp.1" ] || fail "a file not of the store's naming was removed"
echo "stale temporaries removed"

# 4. inspect: --show-config is its own; --config stays the global option
"$DDTRAIN" inspect "$ck" --show-config >"$work/out" 2>"$work/err" ||
  fail "inspect --show-config failed: $(cat "$work/err")"
grep -q '^seed = ' "$work/out" || fail "inspect --show-config printed no configuration"
"$DDTRAIN" inspect --help | grep -q -- "--show-config" || fail "inspect --help lacks --show-config"
cp "$ck" "$work/quo\"te.ckpt"
"$DDTRAIN" inspect "$work/quo\"te.ckpt" --json >"$work/out" || fail "inspect --json failed"
grep -qF 'quo\"te.ckpt"' "$work/out" || fail "inspect --json did not escape the quote: $(cat "$work/out")"
echo "inspect options and JSON"

# 4b. a checkpoint with an empty payload says so (the CRC-32 of nothing is 0)
printf 'DDTCKPT\n\001\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000' \
  >"$work/empty.ckpt"
set +e
"$DDTRAIN" train --run-dir "$work/r-empty" --resume "$work/empty.ckpt" --train-samples 100 2>"$work/err"
status=$?
set -e
[ "$status" -eq 2 ] || fail "resuming an empty checkpoint exited $status"
grep -qF "$work/empty.ckpt: the checkpoint's payload is empty" "$work/err" ||
  fail "no message for an empty payload: $(cat "$work/err")"
echo "empty payload named"

# 5. SIGTERM to the wrapper at any moment of its start stops cleanly (0)
for delay in 0.05 0.2 0.5 1; do
  "$RUN" -np 1 -- train --run-dir "$work/early$delay" $small --epochs 100000 >"$work/out" 2>&1 &
  pid=$!
  track $pid
  sleep $delay
  kill -TERM $pid
  timeout 60 sh -c "while kill -0 $pid 2>/dev/null; do sleep 0.2; done" ||
    fail "SIGTERM after ${delay}s did not stop the run: $(tail -n 3 "$work/out")"
  set +e
  wait $pid
  status=$?
  set -e
  [ "$status" -eq 0 ] || fail "SIGTERM after ${delay}s: exit $status: $(tail -n 3 "$work/out")"
done
echo "early SIGTERM is clean"
