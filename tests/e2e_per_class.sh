#!/bin/sh
# End to end: `ddtrain eval --per-class` on two ranks against the rows of
# --predictions counted in Python: the confusion matrix (rows: true label,
# columns: prediction), each class's samples, correct count and accuracy,
# in JSON and in the table.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

"$DDTRAIN" train --run-dir "$work/run" --data fashion-mnist --train-samples 1024 \
  --test-samples 300 --model 784-32-10 --batch-size 64 --max-steps 8 --eval-every 0 \
  --quiet 2>/dev/null || fail "the training run failed"
ckpt="$work/run/checkpoints/latest"
"$RUN" -np 2 -- eval "$ckpt" --test-samples 300 --per-class --json \
  --predictions "$work/pred.csv" >"$work/eval.json" || fail "eval --per-class --json failed"
"$RUN" -np 2 -- eval "$ckpt" --test-samples 300 --per-class >"$work/eval.txt" ||
  fail "eval --per-class failed"
/usr/bin/python3 - "$work/eval.json" "$work/pred.csv" "$work/eval.txt" <<'PY' || fail "per-class results differ from the predictions"
import csv, json, sys
res = json.load(open(sys.argv[1]))
rows = list(csv.DictReader(open(sys.argv[2])))
K = len(res["confusion"])
want = [[0] * K for _ in range(K)]
for r in rows:
    want[int(r["label"])][int(r["prediction"])] += 1
assert len(rows) == 300 == sum(map(sum, want)), len(rows)
assert res["confusion"] == want, (res["confusion"], want)
correct = sum(want[k][k] for k in range(K))
assert abs(res["test_accuracy"] - correct / 300) < 1e-9
text = open(sys.argv[3]).read().splitlines()
start = text.index(next(l for l in text if l.startswith("class")))
for k, pc in enumerate(res["per_class"]):
    n = sum(want[k])
    assert pc == {"class": k, "samples": n, "correct": want[k][k],
                  "accuracy": (round(want[k][k] / n, 9) if n else None)} or \
        abs(pc["accuracy"] - want[k][k] / n) < 1e-8, pc
    cells = text[start + 1 + k].split()
    assert cells[:3] == [str(k), str(n), str(want[k][k])], cells
    assert [int(x) for x in cells[5:]] == want[k], cells
PY
# more classes than a confusion matrix is kept for: refused before any work
"$DDTRAIN" train --run-dir "$work/wide" --data fashion-mnist --train-samples 256 \
  --test-samples 100 --model 784-4-5000 --classes 5000 --batch-size 64 --max-steps 1 \
  --eval-every 0 --quiet 2>/dev/null || fail "the 5000-class run failed"
st=0
"$DDTRAIN" eval "$work/wide/checkpoints/latest" --test-samples 100 --per-class \
  >/dev/null 2>"$work/wide.err" || st=$?
[ "$st" -eq 2 ] || fail "eval --per-class of 5000 classes: exit status $st, expected 2"
grep -q -- "--per-class: the checkpoint's model has 5000 classes.*allowed at most 4096 classes" \
  "$work/wide.err" || fail "eval --per-class of 5000 classes: $(cat "$work/wide.err")"
echo ok
