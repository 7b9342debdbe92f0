#!/bin/sh
# End to end: the analysis commands on small checkpoints under mpirun —
# interpolation end points equal `ddtrain eval` (with the running statistics
# as they are), batch-norm recalibration keeps the line finite, smooth and
# deterministic and flags the points mixed statistics break, the Hessian's top eigenvalue
# does not depend on the rank count, sharpness grows with the box, a
# landscape cut passes through the checkpoint's loss, and summarize reads
# run directories with their saved results.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

common="--data fashion-mnist --train-samples 2048 --test-samples 1000 --model 784-32-10 --bn
  --epochs 2 --quiet --ckpt-every-epochs 0"
"$DDTRAIN" train --run-dir "$work/small" $common --batch-size 32 || fail "small-batch run"
"$DDTRAIN" train --run-dir "$work/large" $common --batch-size 512 || fail "large-batch run"
A="$work/small/checkpoints/step-00000128.ckpt"
B="$work/large/checkpoints/step-00000008.ckpt"
[ -f "$A" ] && [ -f "$B" ] || fail "missing checkpoints: $(ls "$work"/*/checkpoints)"

# interpolation: alpha 0 is A, alpha 1 is B, as eval sees them (with their
# own running statistics: --bn-recalibrate 0)
"$RUN" -np 2 -- interpolate "$A" "$B" --alpha 0:1:2 --samples 0 --bn-recalibrate 0 --out "$work/line.csv" \
  || fail "interpolate failed"
head -n 1 "$work/line.csv" | grep -q "^# ddtrain interpolate a=$A b=$B" || fail "no header line"
for which in A B; do
  [ $which = A ] && ck=$A row=3 || { ck=$B; row=4; }
  "$RUN" -np 2 -- eval "$ck" --json >"$work/eval.json" || fail "eval $which"
  line=$(sed -n "${row}p" "$work/line.csv")
  for col in 2:train_loss 4:test_loss 5:test_accuracy; do
    got=$(printf '%s' "$line" | cut -d, -f"${col%%:*}")
    want=$(json_field "$(cat "$work/eval.json")" "${col#*:}")
    awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * (b < 0 ? -b : b) + 1e-6) }' \
      || fail "interpolate at $which: ${col#*:} $got, eval says $want"
  done
done

# with batch-norm recalibration (the default): the same bits twice, every
# loss finite and below 10 (ln 10 = 2.3 is a uniform guess), the end points
# within 10% of eval's loss, and no point far above its neighbours; the
# header says how many samples recalibrate
for i in 1 2; do
  "$RUN" -np 2 -- interpolate "$A" "$B" --alpha -1:3:9 --samples 1000 --test-samples 500 \
    --out "$work/recal$i.csv" 2>"$work/recal$i.err" || fail "interpolate with recalibration"
done
cmp -s "$work/recal1.csv" "$work/recal2.csv" || fail "recalibrated interpolation differs between two runs"
head -n 1 "$work/recal1.csv" | grep -q " bn_recalibrate=1000$" || fail "header: $(head -n 1 "$work/recal1.csv")"
[ ! -s "$work/recal1.err" ] || fail "recalibrated line warned: $(cat "$work/recal1.err")"
awk -F, '/^[-0-9]/ { for (i = 2; i <= 5; i++) if (!($i + 0 == $i + 0 && $i < 10)) exit 1;
  if (n >= 2 && $2 > 3 * (p1 > p2 ? p1 : p2) + 0.5) exit 1; p2 = p1; p1 = $2; n++ }' "$work/recal1.csv" ||
  fail "recalibrated line not finite or not smooth: $(cat "$work/recal1.csv")"
# A's running statistics have settled (128 steps at momentum 0.1), so its
# recalibrated loss is eval's; B's 8 steps left them 43% at their initial
# 0 and 1, which recalibration rightly replaces
got=$(grep '^0,' "$work/recal1.csv" | cut -d, -f2)
"$DDTRAIN" eval "$A" --json >"$work/eval.json" || fail "eval A"
want=$(json_field "$(cat "$work/eval.json")" train_loss)
awk -v a="$got" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.05 * b) }' ||
  fail "recalibrated loss at A: $got, eval says $want"
# without it, the mixed running statistics far past B: a warning names the
# point and the option
"$DDTRAIN" interpolate "$A" "$B" --alpha 0:8:5 --samples 500 --test-samples 100 --bn-recalibrate 0 \
  >/dev/null 2>"$work/mixed.err" || fail "interpolate --bn-recalibrate 0"
grep -q "^ddtrain interpolate: warning: alpha [0-9.]*: train loss .* is numerically suspect (over 10 times the largest of A's .*, B's .*, a uniform guess's 2.303); .*(--bn-recalibrate)$" \
  "$work/mixed.err" || fail "no warning about the mixed statistics: $(cat "$work/mixed.err")"

# Hessian: the same top eigenvalue with 1 and 2 ranks; positive at a minimum
for n in 1 2; do
  "$RUN" -np $n -- hessian "$A" --top 1 --samples 1000 --iters 200 --out "$work/hessian$n.csv" \
    || fail "hessian with $n ranks"
done
e1=$(sed -n 3p "$work/hessian1.csv" | cut -d, -f2)
e2=$(sed -n 3p "$work/hessian2.csv" | cut -d, -f2)
awk -v a="$e1" -v b="$e2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d < 0.02 * a) }' \
  || fail "top eigenvalue $e1 with one rank, $e2 with two"

# sharpness: non-negative, and a larger box finds at least as much
"$RUN" -np 2 -- sharpness "$A" --eps 1e-4 --samples 1000 --out "$work/small/sharpness-1e-4.csv" \
  || fail "sharpness 1e-4"
"$RUN" -np 2 -- sharpness "$A" --eps 1e-3 --samples 1000 --out "$work/small/sharpness-1e-3.csv" \
  || fail "sharpness 1e-3"
s4=$(sed -n 3p "$work/small/sharpness-1e-4.csv" | cut -d, -f7)
s3=$(sed -n 3p "$work/small/sharpness-1e-3.csv" | cut -d, -f7)
awk -v a="$s4" -v b="$s3" 'BEGIN { exit !(a >= 0 && b > a) }' || fail "sharpness $s4 at 1e-4, $s3 at 1e-3"
"$RUN" -np 1 -- sharpness "$A" --eps 1e-3 --subspace 5 --samples 500 --json >"$work/sub.json" \
  || fail "sharpness in a subspace"
grep -q '"columns":\["eps","subspace"' "$work/sub.json" || fail "sharpness --json: $(cat "$work/sub.json")"

# landscape: the centre of the cut is the checkpoint's loss on the same samples
# (with its own running statistics)
"$RUN" -np 2 -- landscape "$A" --dims 2 --range -1:1:3 --filter-norm --samples 0 \
  --bn-recalibrate 0 --out "$work/land.csv" || fail "landscape"
[ "$(grep -c '^[-0-9]' "$work/land.csv")" = 9 ] || fail "a 3x3 grid has 9 rows"
centre=$(grep '^0,0,' "$work/land.csv" | cut -d, -f3)
"$DDTRAIN" eval "$A" --json >"$work/eval.json"
want=$(json_field "$(cat "$work/eval.json")" train_loss)
awk -v a="$centre" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < 1e-5) }' \
  || fail "landscape centre $centre, eval $want"
# recalibrated (the default): deterministic, finite, the centre near eval's
for i in 1 2; do
  "$RUN" -np 2 -- landscape "$A" --range -1:1:5 --samples 1000 --out "$work/landr$i.csv" ||
    fail "landscape with recalibration"
done
cmp -s "$work/landr1.csv" "$work/landr2.csv" || fail "recalibrated landscape differs between two runs"
centre=$(grep '^0,' "$work/landr1.csv" | cut -d, -f2)
awk -v a="$centre" -v b="$want" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 0.1 * b) }' \
  || fail "recalibrated landscape centre $centre, eval $want"

# summarize: one row per run, the batch size as the swept setting, the
# sharpness files found beside the run
"$DDTRAIN" summarize "$work/small" "$work/large" >"$work/summary.csv" || fail "summarize"
head -n 1 "$work/summary.csv" | grep -q '^run,batch-size,status,steps,train_loss' \
  || fail "summary header: $(head -n 1 "$work/summary.csv")"
grep -q "^$work/small,32,done,128," "$work/summary.csv" || fail "summary row: $(cat "$work/summary.csv")"
grep -q "sharpness-1e-3" "$work/summary.csv" || fail "summary lacks the sharpness column"
"$DDTRAIN" summarize --markdown "$work/small" "$work/large" | grep -q '^| run | batch-size |' \
  || fail "summarize --markdown"
# a table that cannot be written: said, exit status 1 (an I/O failure)
cannot_write() {
  st=0
  "$DDTRAIN" "$@" --out "$work/no/such/dir/x.csv" >/dev/null 2>"$work/out.err" || st=$?
  [ "$st" -eq 1 ] || fail "$1 --out into a missing directory: exit status $st, expected 1"
  grep -q "$work/no/such/dir/x.csv" "$work/out.err" || fail "$1: no message naming the file: $(cat "$work/out.err")"
}
cannot_write interpolate "$A" "$B" --alpha 0:1:2 --samples 200 --test-samples 100 --bn-recalibrate 0
cannot_write landscape "$A" --range -1:1:2 --samples 200 --bn-recalibrate 0
cannot_write hessian "$A" --top 1 --samples 200 --iters 5
cannot_write sharpness "$A" --eps 1e-4 --samples 200
cannot_write summarize "$work/small"
# the plots come out as PNG files
if command -v gnuplot >/dev/null; then
  PLOT="$top_srcdir/launch/ddtrain-plot"
  is_png() { [ "$(head -c 8 "$1" | od -An -c | tr -d ' \n')" = '211PNG\r\n032\n' ] || fail "$1 is not a PNG"; }
  "$PLOT" cut "$work/line.csv" --out "$work/line.png" >/dev/null || fail "plot of the interpolation"
  is_png "$work/line.png"
  "$PLOT" cut "$work/land.csv" --out "$work/land.png" >/dev/null 2>&1 || fail "plot of the landscape"
  is_png "$work/land.png"
  "$PLOT" curves --out "$work/plots" "$work/small" "$work/large" >/dev/null 2>&1 || fail "training curves"
  for f in loss_epoch accuracy_epoch loss_step lr batch noise_scale; do is_png "$work/plots/$f.png"; done
  "$PLOT" sweep "$work/summary.csv" --out "$work/plots" >/dev/null || fail "sweep plot"
  is_png "$work/plots/sweep_test_accuracy.png"
fi
echo "analysis commands agree with eval and across rank counts"
