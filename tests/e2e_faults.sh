#!/bin/sh
# End to end: faults of the machine a run must survive or report. Each
# section is a function named section_*, run in the order of the list at the
# bottom (or those named as arguments); a section that needs what this
# machine cannot give (a tmpfs mount) says SKIP and the others still run.
#
#   ckpt_full_disk     every checkpoint fails on a full disk: one retry, then
#                      exit 4 on every rank, the path and the error said, no
#                      RUN/finished
#   ckpt_fail_on_stop  SIGTERM's checkpoint fails: exit 4, not 0
#   metrics_full_disk  metrics.jsonl cannot be appended to: exit 4 without a
#                      further checkpoint; once there is room, --resume auto
#                      drops the torn last line and ends with the metrics of
#                      an uninterrupted run
#   metrics_full_best  an evaluation's line cannot be written with --keep-best
#                      (local SGD's and a sharded optimizer's gathers): every
#                      rank skips the best checkpoint together, exit 4 at once
#                      rather than the watchdog's 5
#   metrics_torn_line  a torn last line is cut back on resume
#   sweep_failed       ddtrain-sweep records an exit-4 run as failed, not
#                      finished or diverged, and says so
#   memory_refused     a model too large for this machine's memory is refused
#                      at once with the figures (exit 2)
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

# ---- helpers --------------------------------------------------------------------

mounts=""
# small_disk DIR KB: a tmpfs of KB kibibytes at DIR; fails where mounting is
# not allowed (not root, a container without CAP_SYS_ADMIN)
small_disk() {
  mkdir -p "$1"
  mount -t tmpfs -o "size=${2}k" tmpfs "$1" 2>/dev/null || return 1
  mounts="$1 $mounts"
}
unmount_all() {
  for m in $mounts; do
    umount -l "$m" 2>/dev/null || true
  done
}
trap 'unmount_all; cleanup' EXIT
# so that the mounts go also when the test is stopped
trap 'exit 1' INT TERM HUP

section() {
  echo "== $1"
}

skip_section() {
  echo "SKIP $1: $2"
}

# run_status VAR COMMAND...: runs COMMAND, sets VAR to its exit status
run_status() {
  var=$1
  shift
  set +e
  "$@"
  eval "$var=\$?"
  set -e
}

# Every line of a metrics file is a whole JSON object.
whole_lines() {
  [ -z "$(tail -c 1 "$1")" ] || fail "$1 ends in a torn line: $(tail -n 1 "$1")"
  ! grep -qv '^{.*}$' "$1" || fail "$1 has a broken line: $(grep -v '^{.*}$' "$1" | head -n 1)"
}

small="--data fashion-mnist --train-samples 2048 --test-samples 256 --model 784-64-10
  --batch-size 64 --quiet"

# ---- sections -------------------------------------------------------------------

section_ckpt_full_disk() {
  section ckpt_full_disk
  disk="$work/full"
  # the checkpoint of this model with Adam's two moments is about 600 KiB
  small_disk "$disk" 256 || { skip_section ckpt_full_disk "cannot mount a tmpfs here"; return 0; }
  run_status status "$RUN" -np 2 -- train --run-dir "$disk/a" $small --epochs 3 --log-every 1 \
    --optimizer adamw 2>"$work/full.err"
  [ "$status" -eq 4 ] || fail "full disk: exit status $status, expected 4: $(cat "$work/full.err")"
  grep -q "trying once more" "$work/full.err" || fail "full disk: no retry: $(cat "$work/full.err")"
  grep -q "failed again: .*$disk/a/checkpoints/step-00000032.ckpt.*No space left on device" "$work/full.err" \
    || fail "full disk: the message lacks the path or the error: $(cat "$work/full.err")"
  grep -q "exit status 4" "$work/full.err" || fail "full disk: the status is not said"
  [ ! -e "$disk/a/finished" ] || fail "full disk: RUN/finished written without a checkpoint"
  ! ls "$disk/a/checkpoints" | grep -q '^step-' || fail "full disk: a checkpoint appeared"
  ! ls "$disk/a/checkpoints" | grep -q 'tmp' || fail "full disk: a temporary file was left"
  # it stopped at the first checkpoint (the end of epoch 1): no step after it
  last=$(json_field "$(grep '"kind":"train"' "$disk/a/metrics.jsonl" | tail -n 1)" step)
  [ "$last" = 32 ] || fail "full disk: trained on to step $last after the failed checkpoint"
  whole_lines "$disk/a/metrics.jsonl"
}

section_ckpt_fail_on_stop() {
  section ckpt_fail_on_stop
  # checkpoints/ is a file: every checkpoint fails, whatever the permissions
  # (root writes into read-only directories)
  mkdir -p "$work/stop"
  : >"$work/stop/checkpoints"
  "$RUN" -np 2 -- train --run-dir "$work/stop" $small --epochs 200 --ckpt-every-epochs 0 \
    --no-ckpt-at-end --log-every 1 2>"$work/stop.err" &
  pid=$!
  track $pid
  wait_for_step "$work/stop" 20
  kill -TERM $pid
  run_status status wait $pid
  [ "$status" -eq 4 ] || fail "SIGTERM with a failing checkpoint: exit status $status, expected 4: $(cat "$work/stop.err")"
  grep -q "failed again: .*$work/stop/checkpoints exists and is not a directory" "$work/stop.err" \
    || fail "SIGTERM: the message lacks the path: $(cat "$work/stop.err")"
  [ ! -e "$work/stop/finished" ] || fail "SIGTERM: RUN/finished written"
}

section_metrics_full_disk() {
  section metrics_full_disk
  reference="$work/mref"
  args="$small --epochs 3 --log-every 1 --ckpt-every 8 --ckpt-keep 100"
  disk="$work/mdisk"
  small_disk "$disk" 64 || { skip_section metrics_full_disk "cannot mount a tmpfs here"; return 0; }
  "$RUN" -np 2 -- train --run-dir "$reference" $args || fail "the reference run failed"
  # the checkpoints live elsewhere: only metrics.jsonl (and config.txt) fill
  # this disk, and about 10 KiB of it is left for them
  mkdir -p "$disk/a" "$work/mckpt"
  ln -s "$work/mckpt" "$disk/a/checkpoints"
  dd if=/dev/zero of="$disk/filler" bs=1024 count=52 2>/dev/null
  run_status status "$RUN" -np 2 -- train --run-dir "$disk/a" $args 2>"$work/m.err"
  [ "$status" -eq 4 ] || fail "metrics on a full disk: exit status $status, expected 4: $(cat "$work/m.err")"
  grep -q "cannot append to $disk/a/metrics.jsonl: No space left on device" "$work/m.err" \
    || fail "metrics on a full disk: no message naming the file and the error: $(cat "$work/m.err")"
  [ ! -e "$disk/a/finished" ] || fail "metrics on a full disk: RUN/finished written"
  # no checkpoint past the last whole line: resuming writes the lost ones again
  whole=$(grep '}$' "$disk/a/metrics.jsonl" | tail -n 1)
  newest=$(ls "$work/mckpt" | grep '^step-' | tail -n 1 | sed 's/step-0*\([0-9]*\).ckpt/\1/')
  [ -n "$newest" ] || fail "metrics on a full disk: no checkpoint before the failure"
  [ "$newest" -le "$(json_field "$whole" step)" ] \
    || fail "metrics on a full disk: checkpoint $newest is past the last whole line $whole"
  rm -f "$disk/filler"
  "$RUN" -np 2 -- train --run-dir "$disk/a" --resume auto --quiet 2>"$work/m2.err" \
    || fail "resume after the metrics failure failed: $(cat "$work/m2.err")"
  whole_lines "$disk/a/metrics.jsonl"
  metrics_no_timing "$reference/metrics.jsonl" >"$work/m.ref"
  metrics_no_timing "$disk/a/metrics.jsonl" >"$work/m.resumed"
  cmp -s "$work/m.ref" "$work/m.resumed" || { diff "$work/m.ref" "$work/m.resumed" >&2; fail "metrics after the failure and resume differ from the uninterrupted run"; }
  [ -f "$disk/a/finished" ] || fail "the resumed run did not finish"
  # what happened, for the log (a write cut short leaves a torn line)
  grep -h "cannot append\|torn" "$work/m.err" "$work/m2.err" | sed 's/^/  /' || true
}

section_metrics_full_best() {
  section metrics_full_best
  disk="$work/bdisk"
  small_disk "$disk" 64 || { skip_section metrics_full_best "cannot mount a tmpfs here"; return 0; }
  for kind in local shard; do
    extra="--local-steps 2"
    [ $kind = local ] || extra="--shard-optimizer"
    rm -rf "$disk/$kind" "$disk/filler" "$work/bckpt.$kind"
    mkdir -p "$disk/$kind" "$work/bckpt.$kind"
    ln -s "$work/bckpt.$kind" "$disk/$kind/checkpoints"
    # one page left: config.txt takes it, and the first line (an
    # evaluation's, with --log-every 1000) finds no room
    used=$(df -k "$disk" | awk 'NR == 2 { print $3 }')
    dd if=/dev/zero of="$disk/filler" bs=1024 count=$((64 - used - 4)) 2>/dev/null
    # a short --stall-timeout: a rank left waiting in a collective fails fast
    run_status status timeout 120 "$RUN" -np 2 -- train --run-dir "$disk/$kind" $small \
      --epochs 2 --log-every 1000 --keep-best --optimizer adam --stall-timeout 15 $extra \
      2>"$work/b.$kind.err"
    [ "$status" -eq 4 ] || fail "--keep-best $extra, metrics on a full disk: exit status $status, expected 4: $(cat "$work/b.$kind.err")"
    grep -q "cannot append to $disk/$kind/metrics.jsonl: No space left on device" "$work/b.$kind.err" \
      || fail "--keep-best $extra: no message naming the file and the error: $(cat "$work/b.$kind.err")"
    [ ! -e "$work/bckpt.$kind/best.ckpt" ] || fail "--keep-best $extra: best.ckpt written past a lost line"
  done
}

section_metrics_torn_line() {
  section metrics_torn_line
  args="$small --epochs 1 --log-every 1 --ckpt-every 8 --ckpt-keep 100"
  "$DDTRAIN" train --run-dir "$work/t" $args || fail "the torn-line run failed"
  metrics_no_timing "$work/t/metrics.jsonl" >"$work/t.ref"
  # as a write cut short leaves it: the lines up to step 8, then half a line
  # of the step it was checkpointed at
  grep -m 8 . "$work/t/metrics.jsonl" >"$work/t/m"
  printf '{"kind":"eval","step":8,"epoch":0.25,"train_lo' >>"$work/t/m"
  mv "$work/t/m" "$work/t/metrics.jsonl"
  "$DDTRAIN" train --run-dir "$work/t" --resume "$work/t/checkpoints/step-00000008.ckpt" --quiet \
    2>"$work/t.err" || fail "resume over a torn line failed: $(cat "$work/t.err")"
  whole_lines "$work/t/metrics.jsonl"
  metrics_no_timing "$work/t/metrics.jsonl" >"$work/t.resumed"
  cmp -s "$work/t.ref" "$work/t.resumed" || { diff "$work/t.ref" "$work/t.resumed" >&2; fail "metrics after the torn line differ"; }
  grep -q "dropped a torn last line" "$work/t.err" || fail "the torn line was not reported: $(cat "$work/t.err")"
}

section_sweep_failed() {
  section sweep_failed
  disk="$work/sdisk"
  small_disk "$disk" 256 || { skip_section sweep_failed "cannot mount a tmpfs here"; return 0; }
  cat >"$work/sweep.txt" <<SPEC
base = $(echo $small) --epochs 1 --optimizer adamw
lr = 0.01
SPEC
  run_status status "$top_srcdir/launch/ddtrain-sweep" "$work/sweep.txt" --out "$disk/sweep" -np 1 \
    >"$work/sweep.log" 2>&1
  [ "$status" -ne 0 ] || fail "the sweep reported success: $(cat "$work/sweep.log")"
  grep -q "lr=0.01: failed: it could not save its state (exit status 4" "$work/sweep.log" \
    || fail "the sweep did not say the point failed: $(cat "$work/sweep.log")"
  [ ! -e "$disk/sweep/lr=0.01/done" ] || fail "the failed point was marked done: $(cat "$disk/sweep/lr=0.01/done")"
  grep -q failed "$disk/sweep/lr=0.01/failed" || fail "the failed point was not marked failed"
}

section_memory_refused() {
  section memory_refused
  # 4e10 parameters: 300 GiB of parameters and gradients alone
  run_status status timeout 120 "$RUN" -np 2 -- train --run-dir "$work/huge" $small \
    --model 784-200000-200000-10 --epochs 1 2>"$work/mem.err"
  [ "$status" -eq 2 ] || fail "an absurd model: exit status $status, expected 2: $(cat "$work/mem.err")"
  grep -q -- "--model/--batch-size: .* MiB .* MiB available" "$work/mem.err" \
    || fail "an absurd model: no message with the figures: $(cat "$work/mem.err")"
  [ ! -e "$work/huge" ] || fail "an absurd model: the run directory was written"
}

# all sections, or those named on the command line (tests/e2e_faults.sh memory_refused)
all="ckpt_full_disk ckpt_fail_on_stop metrics_full_disk metrics_full_best metrics_torn_line sweep_failed memory_refused"
for s in ${*:-$all}; do
  "section_$s"
done
echo "faults: full disk, failed stop checkpoint, metrics failure and resume, torn line, sweep, memory"
