#!/bin/sh
# End to end: invalid options and data get a clear message and exit status 2,
# and nothing is written.
. "$(dirname "$0")/lib.sh"

# expect_error WHAT-THE-MESSAGE-SAYS ARGS...
expect_error() {
  says=$1
  shift
  rm -rf "$work/run"
  set +e
  "$DDTRAIN" train --run-dir "$work/run" "$@" >"$work/out" 2>"$work/err"
  status=$?
  set -e
  [ "$status" -eq 2 ] || fail "'$*' exited $status, expected 2 ($(cat "$work/err"))"
  grep -qF -- "$says" "$work/err" || fail "'$*': message lacks '$says': $(cat "$work/err")"
  [ ! -e "$work/run" ] || fail "'$*' wrote $work/run"
}

expect_error "--lr: '-1' is not valid: allowed a number in (0, 100]" --lr -1
expect_error "--lr: 'fast' is not valid" --lr fast
expect_error "--optimizer: 'rmsprop' is not one of the choices: allowed sgd, adam, adamw, lars, lamb" --optimizer rmsprop
expect_error "unknown option '--learning-rate'" --learning-rate 0.1
expect_error "--epochs needs a value" --epochs
expect_error "--model: '784-abc-10'" --model 784-abc-10
expect_error "--lr-decay: 'linear' is not one of the choices" --lr-decay linear
expect_error "--batch-size: '0' is not valid" --batch-size 0
expect_error "--lr-milestones" --lr-decay step --lr-milestones 5,3
expect_error "$work/nowhere" --data "$work/nowhere"

# a damaged data set names the file and what is wrong
mkdir -p "$work/bad"
printf '\000\000\010\003\000\000\000\002\000\000\000\034\000\000\000\034abc' >"$work/bad/train-images-idx3-ubyte"
printf '\000\000\010\001\000\000\000\002\001\002' >"$work/bad/train-labels-idx1-ubyte"
cp "$work/bad/train-images-idx3-ubyte" "$work/bad/t10k-images-idx3-ubyte"
cp "$work/bad/train-labels-idx1-ubyte" "$work/bad/t10k-labels-idx1-ubyte"
expect_error "$work/bad/train-images-idx3-ubyte" --data "$work/bad"
grep -q "truncated" "$work/err" || fail "the damaged file's message does not say truncated: $(cat "$work/err")"

if [ -d /usr/share/datasets/fashion-mnist ]; then
  expect_error "--model: the input width is 100 but the data set" --model 100-10
  expect_error "--model: the output width is 5 but --classes is 10" --model 784-5
  # an existing run is never overwritten
  mkdir -p "$work/old" && echo '{}' >"$work/old/metrics.jsonl"
  set +e
  "$DDTRAIN" train --run-dir "$work/old" --train-samples 512 --epochs 1 --quiet 2>"$work/err"
  status=$?
  set -e
  [ "$status" -eq 2 ] || fail "training into an existing run exited $status"
  grep -q "already holds a run" "$work/err" || fail "no message for an existing run: $(cat "$work/err")"
  [ "$(cat "$work/old/metrics.jsonl")" = '{}' ] || fail "the old run's metrics were touched"
fi

# --help works and lists options from the table
"$DDTRAIN" train --help >"$work/help" || fail "--help exited non-zero"
grep -q -- "--lr-decay" "$work/help" || fail "--help lacks --lr-decay"
# --version: the package version configure.ac names
"$DDTRAIN" --version >"$work/version" || fail "--version exited non-zero"
grep -qx 'ddtrain [0-9][0-9]*\.[0-9][0-9]*\.[0-9][0-9]*' "$work/version" ||
  fail "--version printed '$(cat "$work/version")', not 'ddtrain X.Y.Z'"
echo "all option errors reported"
