#!/bin/sh
# make installcheck: the installed tree has every file, and the installed
# programs work from another folder without the build tree: ddtrain and its
# --help, the launch scripts (which find ddtrain and each other beside
# themselves), and with Fashion-MNIST a tiny training run through
# ddtrain-run and one through ddtrain-sweep.
# Called by Makefile.am with bindir, mandir, pkgdatadir, docdir and
# bashcompletiondir set.
set -eu

fail() {
  echo "FAIL: installcheck: $*" >&2
  exit 1
}

scripts="ddtrain-run ddtrain-sweep ddtrain-plot ddtrain-study-sharp-minima ddtrain-study-batch-growth
  ddtrain-study-local-sgd"
commands="train eval sharpness hessian interpolate landscape summarize inspect ctl export"
for f in "$bindir/ddtrain" $(for s in $scripts; do echo "$bindir/$s"; done); do
  [ -x "$f" ] || fail "$f is not installed"
done
for p in ddtrain $(for c in $commands; do echo "ddtrain-$c"; done) $scripts; do
  [ -f "$mandir/man1/$p.1" ] || fail "$mandir/man1/$p.1 is not installed"
done
for f in "$pkgdatadir/ddtrain.proto" "$docdir/README.md" "$docdir/slurm-example.sh" \
  "$bashcompletiondir/ddtrain" "$bashcompletiondir/ddtrain-run"; do
  [ -f "$f" ] || fail "$f is not installed"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/ddtrain-installcheck.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
# only the installed programs: no build tree, no DDTRAIN
PATH="$bindir:/usr/local/bin:/usr/bin:/bin"
export PATH
unset DDTRAIN || true

ddtrain --help >out || fail "ddtrain --help failed"
grep -q '^usage: ddtrain COMMAND' out || fail "ddtrain --help: $(cat out)"
ddtrain train --help >out 2>&1 || fail "ddtrain train --help failed: $(cat out)"
grep -q -- '--lr-decay' out || fail "ddtrain train --help lacks --lr-decay"
ddtrain ctl --help >out || fail "ddtrain ctl --help failed"
for s in $scripts; do
  "$s" --help >out 2>&1 || fail "$s --help failed: $(cat out)"
  grep -q "$s" out || fail "$s --help does not name $s: $(cat out)"
  ! grep -n 'launch/ddtrain-\|launch/study' out || fail "$s --help names the source tree's launch/"
done
# the scripts that look for ddtrain or launch/setup take the installed ways
for s in ddtrain-run ddtrain-study-sharp-minima ddtrain-study-batch-growth ddtrain-study-local-sgd; do
  grep -q '^installed=yes$' "$bindir/$s" || fail "$bindir/$s is not the installed variant"
done
if command -v man >/dev/null; then
  man -l "$mandir/man1/ddtrain-train.1" 2>/dev/null | grep -q 'lr-decay' || fail "man ddtrain-train lacks --lr-decay"
fi

if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  echo "installcheck: Fashion-MNIST is not installed: no training runs" >&2
  exit 0
fi
tiny="--data fashion-mnist --model 784-64-10 --epochs 1 --train-samples 2048 --test-samples 1000 --quiet"
# shellcheck disable=SC2086
ddtrain-run -np 2 -- train $tiny --run-dir "$work/run" >log 2>&1 || fail "ddtrain-run training failed: $(tail -n 20 log)"
[ -s "$work/run/metrics.jsonl" ] || fail "the installed training run wrote no metrics"
ck="$work/run/checkpoints/$(cat "$work/run/checkpoints/latest")"
ddtrain inspect "$ck" >out || fail "ddtrain inspect $ck failed"
printf 'base = %s --batch-size 256\nseed = 1\n' "$tiny" >spec.txt
ddtrain-sweep spec.txt --out "$work/sweep" -np 2 >log 2>&1 || fail "ddtrain-sweep failed: $(tail -n 20 log)"
[ -e "$work/sweep/seed=1/done" ] || fail "ddtrain-sweep: the point is not done: $(tail -n 20 log)"
echo "installcheck: the installed ddtrain, launch scripts, man pages and completion work"
