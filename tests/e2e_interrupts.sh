#!/bin/sh
# Fault injection under mpirun -np 2: runs interrupted at random moments,
# resumed with --resume auto until they finish, must end with the bits of the
# uninterrupted run: every tensor of the final checkpoint byte for byte
# (tests/ckpt_tensors), its schedule fields, and metrics.jsonl line for line
# without timings. The kinds of interruption:
#
#   rank    SIGKILL of one rank (0 or 1): the job ends non-zero
#   mpirun  SIGKILL of mpirun: its ranks must not outlive it
#   ckpt    --ckpt-every 1 and SIGKILL of rank 0 as soon as a checkpoint
#           temporary (*.tmp.*) shows up; a temporary still there after the
#           kill means the write was cut short
#   term    SIGTERM of launch/ddtrain-run: exit 0, a checkpoint if training
#           had started
#   twice   two of the above: kill, resume, kill the resumed run, resume
#
# A moment is either a time after the launch (often before the first
# checkpoint, or before the ranks run at all: --resume auto then starts over)
# or a step the metrics have logged.
#
#   DDT_FAULT_TRIALS=N  trials (default 6, one of each kind first; `make
#                       check-faults` runs 24)
#   DDT_FAULT_SEED=S    the seed of the plan (printed; default random): the
#                       same seed gives the same kinds, moments and victims
#                       (where a kill lands still depends on the timing)
#   DDT_FAULT_KEEP=DIR  copies the run directories and logs of failed trials
#                       there
. "$(dirname "$0")/lib.sh"
# dash runs the EXIT trap (lib.sh's cleanup) only on a normal exit
trap 'exit 130' INT HUP TERM
need_fashion_mnist

trials=${DDT_FAULT_TRIALS:-6}
seed=${DDT_FAULT_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}
case "$trials$seed" in *[!0-9]*) fail "DDT_FAULT_TRIALS and DDT_FAULT_SEED are whole numbers" ;; esac
echo "interrupts: seed $seed, $trials trials (DDT_FAULT_SEED=$seed DDT_FAULT_TRIALS=$trials repeats the plan)"

tensors="$top_builddir/tests/ckpt_tensors"
[ -x "$tensors" ] || fail "no $tensors (make tests/ckpt_tensors)"

args="--data fashion-mnist --model 784-128-10 --train-samples 2048 --test-samples 512
  --epochs 3 --batch-size 64 --dropout 0.1 --optimizer adamw --lr 0.002 --lr-decay cosine
  --log-every 1 --ckpt-keep 3 --quiet"
steps=96
final=step-00000096.ckpt

# ---- the plan's random numbers ------------------------------------------------
# A 31-bit linear congruential generator: rnd VAR N sets VAR to 0..N-1. Every
# trial draws the same count whatever happens, so a seed is one plan.
rng=$((seed % 2147483648))
rnd() {
  rng=$(((rng * 1103515245 + 12345) % 2147483648))
  eval "$1=$(((rng >> 8) % $2))"
}

# ---- the uninterrupted run ----------------------------------------------------
"$RUN" -np 2 -- train --run-dir "$work/ref" $args --ckpt-every 4 2>"$work/ref.log" ||
  { cat "$work/ref.log" >&2; fail "the uninterrupted run failed"; }
mkdir "$work/ref.t"
"$tensors" "$work/ref/checkpoints/$final" "$work/ref.t" >"$work/ref.dump" ||
  fail "cannot dump the uninterrupted run's $final"
metrics_no_timing "$work/ref/metrics.jsonl" >"$work/ref.metrics"

# ---- processes ----------------------------------------------------------------

# Waits at most $2 seconds for background job $1 to end; its exit status in
# st. Returns 1 (and kills the job) when it does not end in time.
wait_job() {
  i=0
  while running "$1"; do
    i=$((i + 1))
    if [ $i -gt $(($2 * 20)) ]; then
      kill -KILL "$1" 2>/dev/null || true
      return 1
    fi
    sleep 0.05
  done
  set +e
  wait "$1"
  st=$?
  set -e
}

# Waits at most 20 s for the ranks of run $1 to end; returns 1 when some
# remain (they are killed then).
wait_ranks_gone() {
  i=0
  while [ -n "$(run_ranks "$1")" ]; do
    i=$((i + 1))
    if [ $i -gt 400 ]; then
      for p in $(run_ranks "$1"); do kill -KILL "$p" 2>/dev/null || true; done
      return 1
    fi
    sleep 0.05
  done
}

# Starts the run in $dir in the background (job), resuming when $1 is set.
start_run() {
  "$RUN" -np 2 -- train --run-dir "$dir" $args --ckpt-every $every ${1:+--resume auto} \
    >>"$dir.log" 2>&1 &
  job=$!
  track $job
}

# The last step the metrics of $dir have logged (0 for none).
last_step() {
  s=$(sed -n 's/.*"kind":"train","step":\([0-9]*\),.*/\1/p' "$dir/metrics.jsonl" 2>/dev/null | tail -n 1)
  echo "${s:-0}"
}

# Waits for the moment $1 of the running job: tN (N ms after the launch) or
# sN (step N logged, then up to 20 ms more). Returns 1 when the job ended
# first.
await() {
  case $1 in
    t*) ms=${1#t}
        sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))" ;;
    s*) while ! grep -q "\"step\":${1#s}," "$dir/metrics.jsonl" 2>/dev/null; do
          running $job || return 1
          sleep 0.01
        done
        sleep "0.0$(printf '%02d' $((${1#s} * 7 % 20)))" ;;
  esac
  running $job
}

# Runs COMMAND... until it prints a pid, into victim; returns 1 when the job
# ends first (a moment early in the launch comes before mpirun or the ranks).
find_victim() {
  victim=""
  while [ -z "$victim" ]; do
    victim=$("$@")
    [ -n "$victim" ] || { running $job || return 1; sleep 0.01; }
  done
}

# Waits until process $1 runs the launcher and catches SIGTERM (bit 15 of
# SigCgt in its status), at most 10 s; returns 1 when it ends first. A SIGTERM
# that comes before the launcher's shell has run its first line kills it like
# any script (status 143): on a loaded machine a moment a few ms after the
# launch can come that early, and no program can take a signal before it runs.
await_trap() {
  i=0
  while running "$1"; do
    caught=""
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q ddtrain-run &&
      caught=$(sed -n 's/^SigCgt:[[:space:]]*//p' "/proc/$1/status" 2>/dev/null)
    caught=${caught#????????}
    [ -z "$caught" ] || [ $(((0x$caught >> 14) & 1)) -eq 0 ] || return 0
    i=$((i + 1))
    [ $i -le 1000 ] || return 0
    sleep 0.01
  done
  return 1
}

# mpirun of the launcher $1 (a child of the launcher's runner subshell)
mpirun_of() {
  for c in $(pgrep -P "$1"); do
    pgrep -P "$c" -x mpirun || true
  done
}

# Kills the ranks' rank 0 at the first checkpoint temporary it writes after
# moment $1 (or after 3 s without one); sets midwrite when a temporary is
# left, i.e. the write was cut short.
kill_in_ckpt() {
  midwrite=0
  await "$1" || return 1
  find_victim rank_pid "$dir" 0 || return 1
  # a tight loop, no process started in it: the glob is the shell's own
  i=0
  while [ $i -lt 30000 ]; do
    for f in "$dir"/checkpoints/*.tmp.*; do
      [ -e "$f" ] && i=30000
    done
    i=$((i + 1))
  done
  kill -KILL "$victim" 2>/dev/null || return 1
  for f in "$dir"/checkpoints/*.tmp.*; do
    [ -e "$f" ] && midwrite=1
  done
  return 0
}

# Interrupts the running job: kind $1 at moment $2 (victim rank $3). Sets
# what (a description) and bad (why the trial failed, or empty); returns
# once the job and its ranks are gone.
interrupt() {
  what="$1 at $2" late=0 sent=1
  case $1 in
    rank)
      if await "$2" && find_victim rank_pid "$dir" "$3"; then
        kill -KILL "$victim" 2>/dev/null || sent=0
        what="rank $3 killed at $2"
      else sent=0; fi ;;
    mpirun)
      if await "$2" && find_victim mpirun_of $job; then
        kill -KILL "$victim" 2>/dev/null || sent=0
        what="mpirun killed at $2"
      else sent=0; fi ;;
    ckpt)
      if kill_in_ckpt "$2"; then
        what="rank 0 killed in a checkpoint after $2"
        if [ $midwrite -eq 1 ]; then
          what="$what, mid-write"
          midwrites=$((midwrites + 1))
        fi
      else sent=0; fi ;;
    term)
      if await "$2" && await_trap $job; then
        logged=$(last_step)
        kill -TERM $job 2>/dev/null || sent=0
        what="SIGTERM to the launcher at $2"
      else sent=0; fi ;;
  esac
  wait_job $job 60 || { bad="the interrupted job did not end within 60 s"; return; }
  if [ $sent -eq 0 ]; then
    what="$what: the run ended first (status $st)"
    lates=$((lates + 1))
    [ $st -eq 0 ] || bad="the run ended with status $st before its interruption"
    return
  fi
  what="$what, step $(last_step), status $st"
  if [ $1 = term ]; then
    [ $st -eq 0 ] || bad="SIGTERM: the launcher exited with status $st"
    [ "$logged" -eq 0 ] || [ -f "$dir/checkpoints/latest" ] ||
      bad="SIGTERM after step $logged left no checkpoint"
  elif [ $st -eq 0 ]; then
    [ -f "$dir/finished" ] || bad="the job exited 0 after a $1 kill"
  fi
  wait_ranks_gone "$dir" || bad="${bad:+$bad; }ranks outlived the job by 20 s"
  [ -f "$dir/checkpoints/latest" ] || {
    what="$what, before the first checkpoint"
    early=$((early + 1))
  }
}

# ---- comparison ---------------------------------------------------------------

# Compares the finished run in $dir with the uninterrupted one; sets bad.
compare() {
  [ -f "$dir/finished" ] || { bad="the resumed run did not finish"; return; }
  latest=$(cat "$dir/checkpoints/latest" 2>/dev/null || true)
  [ "$latest" = $final ] || { bad="latest names '$latest', not $final"; return; }
  for f in "$dir"/checkpoints/*.tmp.*; do
    [ ! -e "$f" ] || { bad="a checkpoint temporary was left: ${f##*/}"; return; }
  done
  mkdir "$dir.t"
  "$tensors" "$dir/checkpoints/$final" "$dir.t" >"$dir.dump" 2>"$dir.err" ||
    { bad="cannot dump $final: $(cat "$dir.err")"; return; }
  grep '^tensor ' "$work/ref.dump" >"$work/ref.list" || true
  grep '^tensor ' "$dir.dump" >"$dir.list" || true
  cmp -s "$work/ref.list" "$dir.list" || { bad="other tensors in $final"; return; }
  while read -r _ i group name _; do
    cmp -s "$work/ref.t/$i.f32" "$dir.t/$i.f32" || { bad="tensor $group $name differs"; return; }
  done <"$dir.list"
  grep -v '^tensor ' "$work/ref.dump" >"$work/ref.fields" || true
  grep -v '^tensor ' "$dir.dump" >"$dir.fields" || true
  cmp -s "$work/ref.fields" "$dir.fields" ||
    { bad="checkpoint field $(diff "$work/ref.fields" "$dir.fields" | sed -n 's/^> //p' | head -n 1)"; return; }
  # a run killed before its first checkpoint restarts with --resume auto,
  # which says so with a "start" line: the one line the reference lacks
  grep -v '^{"kind":"start",' "$dir/metrics.jsonl" >"$dir.m0" || true
  metrics_no_timing "$dir.m0" >"$dir.metrics"
  cmp -s "$work/ref.metrics" "$dir.metrics" ||
    { bad="metrics differ: $(diff "$work/ref.metrics" "$dir.metrics" | head -n 1)"; return; }
  rm -rf "$dir.t"
}

# ---- trials -------------------------------------------------------------------

# One moment: a quarter of them 0 to 1.5 s after the launch, the others a
# step from 1 to 90; always two draws.
draw_moment() {
  rnd r 4
  rnd n 1500
  if [ $r -eq 0 ]; then moment=t$n; else moment=s$((1 + n * 90 / 1500)); fi
}

identical=0 failed=0 midwrites=0 lates=0 early=0
kinds="rank mpirun ckpt term"
t=1
while [ $t -le "$trials" ]; do
  dir="$work/t$t"
  # the first five trials: one of each kind
  rnd k 5
  [ $t -gt 5 ] || k=$((t - 1))
  kind=$(echo $kinds twice | cut -d' ' -f$((k + 1)))
  rnd k1 4
  rnd k2 4
  rnd v1 2
  rnd v2 2
  rnd e 6
  draw_moment
  m1=$moment
  draw_moment
  m2=$moment
  if [ $kind = twice ]; then
    first=$(echo $kinds | cut -d' ' -f$((k1 + 1)))
    second=$(echo $kinds | cut -d' ' -f$((k2 + 1)))
  else
    first=$kind second=""
  fi
  every=$((2 + e))
  [ "$first" != ckpt ] && [ "$second" != ckpt ] || every=1
  bad="" story=""

  start_run
  interrupt "$first" "$m1" "$v1"
  story="$what"
  if [ -z "$bad" ] && [ -n "$second" ]; then
    # the second moment comes after what the first run logged
    case $m2 in
      s*) l=$(last_step)
          if [ "$l" -lt 88 ]; then m2=s$((l + 1 + ${m2#s} * (88 - l) / 91)); else m2=t${m2#s}; fi ;;
    esac
    start_run resume
    interrupt "$second" "$m2" "$v2"
    story="$story; resumed, $what"
  fi
  if [ -z "$bad" ]; then
    set +e
    timeout -k 10 180 "$RUN" -np 2 -- train --run-dir "$dir" $args --ckpt-every $every \
      --resume auto >>"$dir.log" 2>&1
    st=$?
    set -e
    if [ $st -ne 0 ]; then
      bad="the resume exited with status $st: $(grep -v '^ *$' "$dir.log" | tail -n 1)"
    else
      from=$(sed -n 's/.*resuming from .*\/\(step-[0-9]*\)\.ckpt.*/\1/p' "$dir.log" | tail -n 1)
      grep -q 'no checkpoint yet: starting the run from step 0' "$dir.log" && from="step 0 (no checkpoint)"
      story="$story; resumed from ${from:-?}"
      compare
    fi
  fi
  if [ -z "$bad" ]; then
    identical=$((identical + 1))
    echo "trial $t: $kind, --ckpt-every $every: $story: identical"
  else
    failed=$((failed + 1))
    echo "trial $t: $kind, --ckpt-every $every: $story: FAILED: $bad"
    sed 's/^/    /' "$dir.log" | tail -n 15
    if [ -n "${DDT_FAULT_KEEP:-}" ]; then
      mkdir -p "$DDT_FAULT_KEEP"
      cp -r "$dir" "$dir.log" "$DDT_FAULT_KEEP/" 2>/dev/null || true
    fi
  fi
  wait_ranks_gone "$dir" || true
  rm -rf "$dir" "$dir.t"
  t=$((t + 1))
done

echo "interrupts: $trials trials, $identical identical, $failed failed (seed $seed;" \
  "$midwrites killed mid-write, $early before the first checkpoint, $lates ended before their interruption)"
[ $failed -eq 0 ] || fail "$failed of $trials interrupted runs did not resume to the uninterrupted run's bits (DDT_FAULT_SEED=$seed)"
