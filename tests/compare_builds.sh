#!/bin/sh
# Holds a refactor to "the same bits": builds two revisions of this repository
# on this machine, runs the same small training commands with each build and
# compares what the runs end with: every tensor of the final checkpoint byte
# for byte (parameters, batch-norm running statistics, input normalisation,
# optimizer state), the checkpoint's scalar fields (schedule counters and
# averages, optimizer steps; not the training time) and every metrics.jsonl
# line without its timing fields. The bits depend on the OpenBLAS kernel this
# CPU gets, so two builds are compared on one machine, never against files
# kept from elsewhere.
#
#   tests/compare_builds.sh BASE [HEAD]      (any git revisions; HEAD: HEAD)
#
# Prints one line per run, `NAME: same` or `NAME: DIFFERENT: ...`; exits 0
# when every run ends with the same bits, 1 when one does not, 2 when a
# revision cannot be built. Not part of `make check`: it builds two trees,
# a few minutes on two cores.
case "${1:-}" in
  '' | -h | --help)
    echo "usage: tests/compare_builds.sh BASE [HEAD]   (git revisions; HEAD defaults to HEAD)" >&2
    exit 2 ;;
esac
. "$(dirname "$0")/lib.sh"
# dash runs the EXIT trap (lib.sh's cleanup of $work) only on a normal exit
trap 'exit 130' INT HUP TERM
need_fashion_mnist

die() {
  echo "compare_builds: $*" >&2
  exit 2
}

repo=$(git -C "$top_srcdir" rev-parse --show-toplevel 2>/dev/null) ||
  die "$top_srcdir is not a git checkout"
base=$(git -C "$repo" rev-parse --verify --quiet "$1^{commit}") || die "'$1' is not a commit"
head=$(git -C "$repo" rev-parse --verify --quiet "${2:-HEAD}^{commit}") ||
  die "'${2:-HEAD}' is not a commit"
for b in base head; do
  eval rev=\$$b
  echo "$b $(git -C "$repo" log -1 --format='%h %s' "$rev")" | cut -c1-100
done

# An export of the revision (not a git worktree: other checkouts share this
# repository's worktree list), built in $work/NAME.
build() { # NAME REV
  mkdir "$work/$1"
  git -C "$repo" archive --format=tar "$2" | tar -x -C "$work/$1" ||
    die "cannot export $2"
  (cd "$work/$1" && autoreconf -fi && ./configure --quiet && make -j2) \
    >"$work/$1.build.log" 2>&1 || {
    tail -n 30 "$work/$1.build.log" >&2
    die "building $1 ($2) failed"
  }
}

# The checkpoint reader of the HEAD build; a HEAD older than the tool gets
# this script's copy, compiled with that build's flags and library.
build_tool() {
  if grep -q '^tests_ckpt_tensors_SOURCES' "$work/head/Makefile.am"; then
    make -C "$work/head" tests/ckpt_tensors >>"$work/head.build.log" 2>&1
  else
    echo "note: head has no tests/ckpt_tensors.c; using $top_srcdir/tests/ckpt_tensors.c" >&2
    cp "$top_srcdir/tests/ckpt_tensors.c" "$work/head/tests/"
    printf '%s\n' 'ckpt-tensors:' \
      '	$(CC) $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS) $(AM_CFLAGS) $(CFLAGS) -o tests/ckpt_tensors tests/ckpt_tensors.c $(LDFLAGS) $(LDADD)' \
      >"$work/tool.mk"
    make -C "$work/head" -f Makefile -f "$work/tool.mk" ckpt-tensors >>"$work/head.build.log" 2>&1
  fi || {
    tail -n 30 "$work/head.build.log" >&2
    die "building tests/ckpt_tensors in head failed"
  }
}

echo "building base and head ..." >&2
build base "$base"
build head "$head"
build_tool
tool="$work/head/tests/ckpt_tensors"

common="--data fashion-mnist --model 784-256-256-10 --train-samples 4096
  --test-samples 1024 --epochs 2 --batch-size 64 --log-every 4 --quiet"

# Runs one command with build B (its own binary and launcher) into
# $work/B-runs/NAME; the exit status goes to NAME.status.
train() { # B NAME NP OPTIONS...
  b=$1 dir="$work/$1-runs/$2" np=$3
  shift 3
  mkdir -p "$work/$b-runs"
  set +e
  DDTRAIN="$work/$b/ddtrain" timeout -k 10 600 "$work/$b/launch/ddtrain-run" -np "$np" -- \
    train --run-dir "$dir" $common "$@" >"$dir.out" 2>&1
  echo $? >"$dir.status"
  set -e
}

# The checkpoint `latest` names in run directory $1 (empty if none).
final_ckpt() {
  [ -f "$1/checkpoints/latest" ] && echo "$1/checkpoints/$(cat "$1/checkpoints/latest")"
  return 0
}

# The first line in which two files differ, in the numbering of the file that
# has it (diff's first hunk: 3c3, 5d4 or 4a5).
first_diff_line() { # A B
  diff "$1" "$2" | awk -F'[acd]' 'NR == 1 { split($1, a, ","); split($2, b, ",");
    print (index($0, "a") ? b[1] : a[1]); exit }'
}

# One line for a list of differences: WHAT FIRST (and N more OF)
first_of() { # WHAT FILE OF
  more=$(($(wc -l <"$2") - 1))
  printf '%s %s' "$1" "$(head -n 1 "$2")"
  [ $more -eq 0 ] || printf ' (and %d more%s)' $more "$3"
  echo
}

# Compares the final checkpoints of two runs; prints a line for each kind of
# difference (nothing when they hold the same bits).
compare_ckpt() { # DIR_A DIR_B
  ca=$(final_ckpt "$1") cb=$(final_ckpt "$2")
  [ -n "$ca" ] && [ -n "$cb" ] || { echo "no final checkpoint"; return; }
  [ "${ca##*/}" = "${cb##*/}" ] || { echo "final checkpoint ${ca##*/} vs ${cb##*/}"; return; }
  rm -rf "$work/ta" "$work/tb"
  mkdir "$work/ta" "$work/tb"
  "$tool" "$ca" "$work/ta" >"$work/la" 2>"$work/ea" ||
    { echo "cannot read base's $(cat "$work/ea")"; return; }
  "$tool" "$cb" "$work/tb" >"$work/lb" 2>"$work/eb" ||
    { echo "cannot read head's $(cat "$work/eb")"; return; }
  grep '^tensor ' "$work/la" >"$work/tla" || true
  grep '^tensor ' "$work/lb" >"$work/tlb" || true
  n=$(first_diff_line "$work/tla" "$work/tlb")
  [ -z "$n" ] || {
    echo "tensor list: $({ sed -n "${n}p" "$work/tla"; sed -n "${n}p" "$work/tlb"; } | head -n 1)"
    return
  }
  # tensor INDEX GROUP NAME SHAPE (N floats): cmp the bytes of each
  while read -r _ i group name _; do
    cmp -s "$work/ta/$i.f32" "$work/tb/$i.f32" || echo "$group $name"
  done <"$work/tla" >"$work/tdiff"
  [ ! -s "$work/tdiff" ] ||
    first_of "tensor" "$work/tdiff" " of $(wc -l <"$work/tla")"
  grep -v '^tensor ' "$work/la" >"$work/fa" || true
  grep -v '^tensor ' "$work/lb" >"$work/fb" || true
  # the fields come in the same order: the names of the lines that differ
  paste -d '\n' "$work/fa" "$work/fb" | awk 'NR % 2 { a = $0; next }
    a != $0 { split(a, f, " "); print f[1] }' >"$work/fdiff"
  [ ! -s "$work/fdiff" ] || first_of "field" "$work/fdiff" ""
  rm -rf "$work/ta" "$work/tb"
}

# Compares the two builds' runs NAME and prints its line; returns 1 when they
# differ.
compare_run() { # NAME
  a="$work/base-runs/$1" b="$work/head-runs/$1"
  sa=$(cat "$a.status") sb=$(cat "$b.status")
  if [ "$sa" -ne 0 ] || [ "$sb" -ne 0 ]; then
    echo "$1: DIFFERENT: exit status $sa (base) vs $sb (head): $(tail -n 1 "$([ "$sa" -ne 0 ] && echo "$a" || echo "$b").out")"
    return 1
  fi
  what=$(compare_ckpt "$a" "$b" | paste -s -d ';' | sed 's/;/; /g')
  metrics_no_timing "$a/metrics.jsonl" >"$work/ma"
  metrics_no_timing "$b/metrics.jsonl" >"$work/mb"
  [ -s "$work/ma" ] || what="${what:+$what; }no metrics"
  n=$(first_diff_line "$work/ma" "$work/mb")
  [ -z "$n" ] || what="${what:+$what; }metrics line $n"
  if [ -n "$what" ]; then
    echo "$1: DIFFERENT: $what"
    return 1
  fi
  echo "$1: same"
}

# The command set: NAME RANKS OPTIONS. Three ranks share two cores (the
# launcher oversubscribes); sharded optimizer and shared memory are defaults.
runs() {
  cat <<'EOF'
sgd-1rank           1 --optimizer sgd --lr 0.05
sgd-2ranks          2 --optimizer sgd --lr 0.05 --nesterov
sgd-2ranks-repl     2 --optimizer sgd --lr 0.05 --no-shard-optimizer
sgd-3ranks          3 --optimizer sgd --lr 0.05 --weight-decay 1e-4 --lr-decay cosine
adam-1rank          1 --optimizer adam --lr 0.002
adam-3ranks         3 --optimizer adam --lr 0.002 --bucket-kb 64
adam-3ranks-msgs    3 --optimizer adam --lr 0.002 --bucket-kb 64 --no-shared-memory
adamw-2ranks-repl   2 --optimizer adamw --lr 0.002 --weight-decay 0.01 --no-shard-optimizer --no-overlap
ghostbn-2ranks      2 --optimizer sgd --lr 0.05 --bn-group 16 --dropout 0.1
EOF
}

failed=0
total=0
runs >"$work/runs"
while read -r name np opts; do
  for b in base head; do
    train $b "$name" "$np" $opts
  done
  total=$((total + 1))
  compare_run "$name" || failed=$((failed + 1))
done <"$work/runs"

# fine-tuning from the first run's checkpoint of the same build: a new head
# for another class count, the first layer frozen
name=finetune-2ranks
for b in base head; do
  train $b $name 2 --optimizer sgd --lr 0.02 --seed 7 --model 784-256-256-12 --classes 12 \
    --init-from "$(final_ckpt "$work/$b-runs/sgd-1rank")" --reset-head --freeze-layers 1
done
total=$((total + 1))
compare_run $name || failed=$((failed + 1))

if [ $failed -ne 0 ]; then
  echo "$failed of $total runs differ"
  exit 1
fi
echo "all $total runs: same bits"
