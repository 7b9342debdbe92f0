# Shared helpers for the end-to-end test scripts (sourced, not run).
set -eu

top_builddir=${top_builddir:-$(cd "$(dirname "$0")/.." && pwd)}
top_srcdir=${top_srcdir:-$top_builddir}
DDTRAIN="$top_builddir/ddtrain"
export DDTRAIN
RUN="$top_srcdir/launch/ddtrain-run"

work=$(mktemp -d "${TMPDIR:-/tmp}/ddtrain-test.XXXXXX")
# jobs started in the background, ended with the test whatever happens
background=""
track() {
  background="$background $1"
}
cleanup() {
  for p in $background; do
    kill -KILL "$p" 2>/dev/null || true
  done
  pkill -KILL -f "ddtrain .*--run-dir $work/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The value of a numeric field in a JSON line: json_field LINE NAME
json_field() {
  printf '%s\n' "$1" | sed -n "s/.*\"$2\":\\([^,}]*\\).*/\\1/p"
}

# a < b for decimal numbers
num_lt() {
  awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'
}

# Skips the test (exit 77) when Fashion-MNIST is not installed.
need_fashion_mnist() {
  [ -d /usr/share/datasets/fashion-mnist ] || {
    echo "SKIP: Debian's dataset-fashion-mnist is not installed" >&2
    exit 77
  }
}

# The "loss" of every train line of a metrics file, one per line.
losses() {
  grep '"kind":"train"' "$1" | sed -n 's/.*"loss":\([^,}]*\).*/\1/p'
}

# Fails unless two metrics files have the same number of train lines and
# losses equal within a relative tolerance: same_losses A B TOL WHAT
same_losses() {
  losses "$1" >"$work/la"
  losses "$2" >"$work/lb"
  [ -s "$work/la" ] || fail "$4: no losses in $1"
  paste "$work/la" "$work/lb" | awk -v tol="$3" -v what="$4" '
    NF != 2 { print what ": different numbers of steps"; bad = 1; exit }
    { d = $1 - $2; if (d < 0) d = -d; s = $1 < 0 ? -$1 : $1
      if (d > tol * s + 1e-7) { printf "%s: step %d loss %s vs %s\n", what, NR, $1, $2; bad = 1; exit } }
    END { exit bad }' || fail "$4: losses differ"
}

# Parameters and optimizer state of a checkpoint, as inspect prints their
# checksums (no header lines, which carry timings and paths).
tensor_sums() {
  "$DDTRAIN" inspect "$1" | grep ' crc32 '
}

# Metrics without the timing fields, which no two runs share.
metrics_no_timing() {
  sed -e 's/"samples_per_sec":[^,}]*,\{0,1\}//' -e 's/,\{0,1\}"wall_seconds":[^,}]*//' "$1"
}

# The pids of the ranks (ddtrain processes) of the run in directory $1, one
# per line: processes whose command line starts with the binary, so neither
# mpirun nor the launcher's shell (whose arguments also name the binary and
# the run directory) is one of them.
run_ranks() {
  pgrep -f "^[^ ]*ddtrain train --run-dir $1( |\$)" || true
}

# The pid of rank $2 of the run in directory $1 (empty when it has none),
# from the rank number mpirun puts into each rank's environment.
rank_pid() {
  for p in $(run_ranks "$1"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then
      echo "$p"
      return 0
    fi
  done
}

# Succeeds while process $1 runs (a zombie, ended but not yet waited for,
# does not count).
running() {
  [ -r "/proc/$1/stat" ] || return 1
  [ "$(sed 's/.*) \(.\).*/\1/' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# expect_refused WHAT PATTERN DIR COMMAND...: COMMAND exits 2 with PATTERN on
# stderr ($work/err) and leaves no DIR behind (a refusal writes nothing).
expect_refused() {
  what=$1 pattern=$2 dir=$3
  shift 3
  set +e
  "$@" >/dev/null 2>"$work/err"
  status=$?
  set -e
  [ $status -eq 2 ] || fail "$what: exit $status, expected 2 ($(cat "$work/err"))"
  grep -q -- "$pattern" "$work/err" || fail "$what: the error does not say '$pattern': $(cat "$work/err")"
  [ ! -e "$dir" ] || fail "$what: the refused run wrote $dir"
}

# wait_for_step DIR N: waits (at most a minute) until the run in DIR has
# logged step N in its metrics.
wait_for_step() {
  i=0
  while ! grep -q "\"step\":$2," "$1/metrics.jsonl" 2>/dev/null; do
    i=$((i + 1))
    [ $i -lt 600 ] || fail "run $1 never reached step $2"
    sleep 0.1
  done
}
