#!/bin/sh
# End to end: the watchdog. A 2-rank job whose rank 1 is stopped (SIGSTOP)
# mid-training ends within a bounded time with exit status 5; rank 0's log
# names the missing rank and the wait, and `ddtrain ctl status` shows the
# stall while rank 0 still waits. Both ways of summing the shards: shared
# memory (the flags of rank 1 lag) and messages (its requests stay open);
# and the blocking collectives, which the guards' thread watches: the
# replicated mode without overlap (a step of blocking allreduces) and
# evaluation (its allreduce), where the process ends by _exit(5).
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

# a stopped rank survives SIGKILL's absence: wake and end whatever is left
stopped=""
trap 'for p in $stopped; do kill -CONT "$p" 2>/dev/null || true; done; cleanup' EXIT

# The pid of rank R of the job on run directory DIR (Open MPI puts the rank
# in each process's environment).
rank_pid() { # DIR R
  for p in $(pgrep -f "ddtrain train --run-dir $1 "); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" &&
      { echo "$p"; return 0; }
  done
  return 1
}

# Training steps, and nothing else for a long time.
steps="--train-samples 20000 --test-samples 512 --model 784-256-10 --batch-size 64 --epochs 50 --eval-every 0 --no-noise-scale"
# Evaluation nearly all the time: an epoch of two steps, then 10240 samples
# forwarded through a wide layer.
evals="--train-samples 128 --model 784-1024-10 --batch-size 64 --epochs 100000 --eval-every 1 --no-noise-scale --check-every 0"

# Stops rank 1 of a job with OPTIONS and checks how it ends; rank 0 must be
# found waiting in the wait matching WAIT (an extended regex). Rank 1 is
# stopped at whatever it is doing: when rank 0 is then caught in another
# wait, which the other cases test, it is tried again, up to TRIES times.
stall_case() { # NAME WAIT TRIES OPTIONS...
  case_name=$1 wait_re=$2 tries=$3
  shift 3
  try=1
  while :; do
    stall_try "$case_name.$try" "$@"
    [ $caught -eq 0 ] || break
    [ $try -lt "$tries" ] ||
      fail "$case_name: rank 0 waited in $where, not in a wait matching '$wait_re' ($tries tries)"
    echo "$case_name: rank 1 stopped while rank 0 was not heading for '$wait_re' but $where; again"
    try=$((try + 1))
  done
}

# One try of stall_case: the checks every stall must pass (or fail), then
# whether it caught the wait wanted (sets $where and $caught).
stall_try() { # NAME OPTIONS...
  name=$1
  shift
  dir="$work/$name"
  "$RUN" -np 2 -- train --run-dir "$dir" --data fashion-mnist "$@" --ckpt-every-epochs 0 \
    --log-every 20 --stall-timeout 3 --quiet 2>"$dir.err" &
  job=$!
  track $job
  i=0
  until "$DDTRAIN" ctl --run-dir "$dir" status >"$dir.status" 2>/dev/null &&
    ! grep -q '^step 0 ' "$dir.status"; do
    i=$((i + 1))
    [ $i -lt 300 ] || fail "$name: the job never started training: $(cat "$dir.err")"
    sleep 0.1
  done
  pid=$(rank_pid "$dir" 1) || fail "$name: no process of rank 1"
  kill -STOP "$pid"
  stopped="$stopped $pid"
  t0=$(date +%s)
  # half the deadline in, rank 0 says so in its status (until the abort)
  seen=0
  i=0
  while [ $i -lt 60 ] && kill -0 $job 2>/dev/null; do
    if "$DDTRAIN" ctl --run-dir "$dir" status --timeout-ms 1000 >"$dir.status" 2>/dev/null &&
      grep -q '^stalled: rank 0 has waited .* at step [0-9]*: no progress from rank 1' \
        "$dir.status"; then
      seen=1
      break
    fi
    i=$((i + 1))
    sleep 0.1
  done
  # then the job ends by itself: 3 s of stall-timeout and the abort
  i=0
  while kill -0 $job 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 300 ] || fail "$name: the job still runs 30 s after rank 1 stopped"
    sleep 0.1
  done
  set +e
  wait $job
  status=$?
  set -e
  took=$(($(date +%s) - t0))
  [ $status -eq 5 ] || fail "$name: exit status $status, wanted 5: $(cat "$dir.err")"
  [ $took -ge 2 ] || fail "$name: the job ended after $took s, before the 3 s deadline"
  grep -q "E stall: rank 0 has waited [0-9.]* s in the .* at step [0-9]*: no progress from rank 1;.*exit status 5" \
    "$dir.err" || fail "$name: the log does not name rank 1 and the wait: $(cat "$dir.err")"
  [ "$(grep -c 'E stall:' "$dir.err")" -eq 1 ] ||
    fail "$name: more than one rank, or one rank more than once, ended the job: $(cat "$dir.err")"
  [ $seen -eq 1 ] || fail "$name: ctl status never showed the stall: $(cat "$dir.status")"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$(ps -o stat= -p "$pid")" != Z ]; do
    i=$((i + 1))
    [ $i -lt 50 ] || fail "$name: the stopped rank 1 outlived the job by 5 s"
    sleep 0.1
  done
  where=$(grep 'E stall:' "$dir.err" | sed -n 's/.* s in \(the .*\) at step .*/\1/p')
  echo "$name: exit 5 after $took s; in $where"
  caught=0
  printf '%s\n' "$where" | grep -Eq "^($wait_re)\$" && caught=1
  return 0
}

# shellcheck disable=SC2086
stall_case shm "the .*" 1 $steps
# shellcheck disable=SC2086
stall_case msgs "the .*" 1 $steps --no-shared-memory
# shellcheck disable=SC2086
stall_case blocking "the blocking .*" 3 $steps --no-shard-optimizer --no-overlap --check-every 0
# shellcheck disable=SC2086
stall_case eval "the allreduce of the evaluation's sums" 3 $evals
echo "watchdog: a stopped rank ends the job with exit status 5, in shared memory, with messages, in blocking allreduces and in evaluation"
