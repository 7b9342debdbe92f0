#!/bin/sh
# End to end: the control socket of a running job answers status, checkpoint
# and stop, rejects garbage without disturbing training, is mode 0600, and a
# second coordinator on the same run directory is refused.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist
RAW="$top_builddir/tests/ctl_raw"

"$RUN" -np 2 -- train --run-dir "$work/run" --data fashion-mnist --train-samples 20000 \
  --test-samples 512 --model 784-512-512-10 --batch-size 64 --epochs 50 --log-every 5 \
  --ckpt-every-epochs 0 --quiet 2>"$work/train.err" &
pid=$!
track $pid
sock="$work/run/control.sock"
i=0
until "$DDTRAIN" ctl --run-dir "$work/run" status >"$work/status" 2>/dev/null &&
  ! grep -q '^step 0 ' "$work/status"; do
  i=$((i + 1))
  [ $i -lt 300 ] || fail "the control socket never answered"
  sleep 0.1
done
grep -q '^step [0-9]* epoch 0 batch 64 lr 0.1 ' "$work/status" || fail "status: $(cat "$work/status")"
[ "$(stat -c %a "$sock")" = 600 ] || fail "the socket's mode is $(stat -c %a "$sock")"
"$DDTRAIN" ctl --run-dir "$work/run" status --json | grep -q '"ok":true,"step":' || fail "status --json"

for bad in garbage oversized unknown; do
  "$RAW" "$sock" $bad >"$work/raw" || fail "$bad request: $(cat "$work/raw")"
  grep -q "ok=0 error=" "$work/raw" || fail "$bad request got $(cat "$work/raw")"
done
"$RAW" "$sock" truncated >/dev/null || true
"$DDTRAIN" ctl --run-dir "$work/run" status >/dev/null || fail "status after garbage failed"

# a second coordinator on the same run directory is refused
set +e
"$DDTRAIN" train --run-dir "$work/run" --resume auto --quiet 2>"$work/second.err"
status=$?
set -e
[ $status -eq 2 ] || fail "a second coordinator exited $status"
grep -q "another coordinator" "$work/second.err" || fail "second coordinator: $(cat "$work/second.err")"

"$DDTRAIN" ctl --run-dir "$work/run" checkpoint >/dev/null || fail "checkpoint request failed"
i=0
until ls "$work/run/checkpoints" 2>/dev/null | grep -q '^step-'; do
  i=$((i + 1))
  [ $i -lt 300 ] || fail "the requested checkpoint never appeared"
  sleep 0.1
done
# the file appears before rank 0 has finished the commit and published it
i=0
until "$DDTRAIN" ctl --run-dir "$work/run" status | grep -q "last checkpoint: .*step-"; do
  i=$((i + 1))
  [ $i -lt 50 ] || fail "status does not name the checkpoint"
  sleep 0.1
done
"$DDTRAIN" ctl --run-dir "$work/run" stop >/dev/null || fail "stop request failed"
wait $pid || fail "the stopped job exited with status $?"
[ ! -e "$sock" ] || fail "the socket was left behind"
grep -q "stopping as asked" "$work/train.err" || fail "no stop message: $(cat "$work/train.err")"
set +e
"$DDTRAIN" ctl --run-dir "$work/run" status 2>"$work/err"
[ $? -eq 1 ] || fail "ctl status of a finished run should fail"
set -e
grep -q "no coordinator answers" "$work/err" || fail "dead socket: $(cat "$work/err")"
echo "control socket: status, checkpoint, stop, garbage, second coordinator"
