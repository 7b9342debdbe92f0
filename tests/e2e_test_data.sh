#!/bin/sh
# End to end: --test-data names a CSV test set whose file name has nothing
# to do with the training file's (no "train" to replace by "test"). The run
# evaluates on it, config.txt and the checkpoint record it, eval and a
# resume use it; a file with other columns or labels out of range is refused
# with the option named; without it the old rule (the name with "train"
# replaced by "test") still finds the test split.
. "$(dirname "$0")/lib.sh"

# 4 features, 3 classes; the test set is 30 other rows in a file named apart
mkdir "$work/data"
awk 'BEGIN { for (i = 0; i < 90; i++) printf "%d,%d,%d,%d,%d\n", i % 3, (i * 7) % 11, (i * 5) % 13, i % 3 * 4, (i * 3) % 7 }' \
  >"$work/data/samples.csv"
awk 'BEGIN { for (i = 0; i < 30; i++) printf "%d,%d,%d,%d,%d\n", i % 3, (i * 3) % 11, (i * 2) % 13, i % 3 * 4, (i * 5) % 7 }' \
  >"$work/data/holdout-set.csv"
small="--data $work/data/samples.csv --classes 3 --model 4-8-3 --batch-size 16 --quiet"

# 1. without --test-data a CSV without "train" in its name has no test split
set +e
"$DDTRAIN" train --run-dir "$work/none" $small --epochs 1 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] || fail "a CSV without 'train' in its name and no --test-data: exit $status, want 2"
grep -q -- "--data: .*samples.csv: the file name has no 'train'.*--test-data" "$work/err" ||
  fail "the error does not point at --test-data: $(cat "$work/err")"

# 2. --test-data: the run evaluates on its 30 rows, and records it
"$DDTRAIN" train --run-dir "$work/a" $small --epochs 2 --test-data "$work/data/holdout-set.csv" \
  --ckpt-every 5 2>"$work/err" || fail "the --test-data run failed: $(cat "$work/err")"
grep -qx "test-data = $work/data/holdout-set.csv" "$work/a/config.txt" ||
  fail "config.txt does not record --test-data: $(grep test-data "$work/a/config.txt")"
ck=$(ls "$work"/a/checkpoints/step-*.ckpt | tail -n 1)
"$DDTRAIN" inspect "$ck" --show-config | grep -q "test-data = $work/data/holdout-set.csv" ||
  fail "the checkpoint's configuration does not record --test-data"
ev=$(grep '"kind":"eval"' "$work/a/metrics.jsonl" | tail -n 1)
[ -n "$(json_field "$ev" test_loss)" ] || fail "no test_loss in the eval line: $ev"

# 3. eval takes the run's test set: 30 samples, the loss the run logged
"$DDTRAIN" eval "$work/a" --json >"$work/out" 2>"$work/err" || fail "eval: $(cat "$work/err")"
[ "$(json_field "$(cat "$work/out")" test_samples)" = 30 ] ||
  fail "eval did not take the run's --test-data (30 samples): $(cat "$work/out")"
# eval --test-data another file: its 6 rows
head -n 6 "$work/data/holdout-set.csv" >"$work/data/six.csv"
"$DDTRAIN" eval "$work/a" --json --test-data "$work/data/six.csv" >"$work/out" 2>"$work/err" ||
  fail "eval --test-data: $(cat "$work/err")"
[ "$(json_field "$(cat "$work/out")" test_samples)" = 6 ] ||
  fail "eval --test-data did not take the 6 rows: $(cat "$work/out")"
# eval --data other data brings its own test split, not the run's --test-data
cp "$work/data/samples.csv" "$work/data/x_train.csv"
head -n 9 "$work/data/samples.csv" >"$work/data/x_test.csv"
"$DDTRAIN" eval "$work/a" --json --data "$work/data/x_train.csv" >"$work/out" 2>"$work/err" ||
  fail "eval --data: $(cat "$work/err")"
[ "$(json_field "$(cat "$work/out")" test_samples)" = 9 ] ||
  fail "eval --data did not take x_test.csv's 9 rows: $(cat "$work/out")"

# the analysis commands reopen the run with it: interpolate's test columns
"$DDTRAIN" interpolate "$ck" "$work/a" --alpha 0:1:2 --bn-recalibrate 0 --out "$work/line.csv" \
  2>"$work/err" || fail "interpolate of the --test-data run: $(cat "$work/err")"

# 4. a resume takes it from the checkpoint; changing it is refused
"$DDTRAIN" train --run-dir "$work/a" --resume auto --epochs 3 --quiet 2>"$work/err" ||
  fail "the resume failed: $(cat "$work/err")"
set +e
"$DDTRAIN" train --run-dir "$work/a" --resume auto --epochs 4 --quiet \
  --test-data "$work/data/six.csv" 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] && grep -q -- "--test-data: .*differs from the resumed run's" "$work/err" ||
  fail "a resume with another --test-data: exit $status, $(cat "$work/err")"

# 5. refusals: exit 2, the option named, no run directory
refuse() { # WHAT PATTERN ARGS...
  what=$1 pat=$2
  shift 2
  expect_refused "$what" "$pat" "$work/bad" "$DDTRAIN" "$@"
}
awk 'BEGIN { for (i = 0; i < 10; i++) printf "%d,%d,%d,%d\n", i % 3, i, i + 1, i + 2 }' >"$work/data/narrow.csv"
awk 'BEGIN { for (i = 0; i < 10; i++) printf "%d,%d,%d,%d,%d\n", i % 5, i, i + 1, i + 2, i }' >"$work/data/wide-labels.csv"
refuse "other columns" "--test-data: '$work/data/narrow.csv' has 3 features per sample, the training data .* 4" \
  train --run-dir "$work/bad" $small --epochs 1 --test-data "$work/data/narrow.csv"
refuse "labels out of range" "--test-data: .*wide-labels.csv line 4 column 1: label 3 is out of range" \
  train --run-dir "$work/bad" $small --epochs 1 --test-data "$work/data/wide-labels.csv"
refuse "a missing file" "--test-data: $work/data/none.csv" \
  train --run-dir "$work/bad" $small --epochs 1 --test-data "$work/data/none.csv"
refuse "eval: other columns" "--test-data: '$work/data/narrow.csv' has 3 features" \
  eval "$work/a" --test-data "$work/data/narrow.csv"

# 6. without --test-data the old rule stands: x_train.csv's test split is x_test.csv
"$DDTRAIN" train --run-dir "$work/old" --data "$work/data/x_train.csv" --classes 3 --model 4-8-3 \
  --batch-size 16 --epochs 1 --quiet 2>"$work/err" || fail "the run with x_train.csv failed: $(cat "$work/err")"
grep -qx "test-data = " "$work/old/config.txt" || fail "config.txt lacks an empty test-data line"
"$DDTRAIN" eval "$work/old" --json >"$work/out" 2>"$work/err" || fail "eval of the old-rule run: $(cat "$work/err")"
[ "$(json_field "$(cat "$work/out")" test_samples)" = 9 ] ||
  fail "the old rule did not find x_test.csv's 9 rows: $(cat "$work/out")"
echo "--test-data: trained, evaluated, resumed, refused with the option named; the old rule kept"
