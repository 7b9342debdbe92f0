#!/bin/sh
# End to end under mpirun: every path that works for an MLP works for a small
# convolutional network (conv, spatial batch norm, max pooling, fc) on
# Fashion-MNIST —
#   data parallel: ghost batch norm makes 1 and 2 ranks agree to rounding,
#     the gradient noise scale too (one rank: its two halves); the sharded
#     and the replicated optimizer, shared memory and messages, overlapped
#     and blocking reduction end with the same bits on 2 ranks; LARS and LAMB
#     give each conv weight its trust ratio and exempt its bias;
#   a run stopped by SIGTERM and resumed with --resume auto ends byte for
#     byte where the uninterrupted run ends;
#   fine-tuning: --freeze-layers and --layer-lr-decay count conv layers,
#     --reset-head;
#   launch/study-sharp-minima --smoke on a conv spec (training, sharpness,
#     Hessian, interpolation, summary, plots), and around it eval, inspect,
#     the Hessian on 1 rank against 2, a filter-normalised landscape.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist
tensors="$top_builddir/tests/ckpt_tensors"
[ -x "$tensors" ] || fail "no $tensors (make tests/ckpt_tensors)"

net="in:1x28x28,conv:8k5p2,bn,relu,maxpool:2,conv:16k5p2,bn,relu,maxpool:2,fc:32,bn,relu,fc:10"
data="--data fashion-mnist --train-samples 1024 --test-samples 256 --quiet"

# ---- tensors of checkpoints ----------------------------------------------------
# dump CKPT NAME: every tensor of CKPT into $work/NAME.t, the listing in NAME.txt
dump() {
  mkdir -p "$work/$2.t"
  "$tensors" "$1" "$work/$2.t" >"$work/$2.txt" || fail "cannot read $1"
}
# The floats of parameter tensor $2 of dump $1, one a line.
floats() {
  i=$(awk -v n="$2" '$1 == "tensor" && $3 == "param" && $4 == n { print $2 }' "$work/$1.txt")
  [ -n "$i" ] || fail "dump $1 has no $2"
  od -An -v -f -w4 "$work/$1.t/$i.f32"
}
# |B - A| and |A| of parameter tensor $3 between dumps A ($1) and B ($2)
change() {
  floats "$1" "$3" >"$work/fa"
  floats "$2" "$3" >"$work/fb"
  paste "$work/fa" "$work/fb" | awk '{ d = $2 - $1; s += d * d; w += $1 * $1 } END { printf "%.9g %.9g\n", sqrt(s), sqrt(w) }'
}
# same_tensor A B TENSOR: identical bytes
same_tensor() {
  i=$(awk -v n="$3" '$1 == "tensor" && $3 == "param" && $4 == n { print $2 }' "$work/$1.txt")
  j=$(awk -v n="$3" '$1 == "tensor" && $3 == "param" && $4 == n { print $2 }' "$work/$2.txt")
  [ -n "$i" ] && [ -n "$j" ] && cmp -s "$work/$1.t/$i.f32" "$work/$2.t/$j.f32"
}
# near A B RELTOL: |a - b| <= RELTOL |b|
near() {
  awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; if (b < 0) b = -b; exit !(d <= t * b) }'
}
# The noise_scale of every train line of a metrics file that has one.
noise_scales() {
  grep '"kind":"train"' "$1" | sed -n 's/.*"noise_scale":\([-0-9.e+]*\).*/\1/p'
}

# ---- 1. data parallel ---------------------------------------------------------
par="$data --model $net --epochs 1 --eval-every 0 --ckpt-every-epochs 0 --max-steps 12
  --log-every 1 --check-every 1 --lr 0.05 --batch-size 64"

# ghost batch norm over groups of 16: one rank and two compute the same
for n in 1 2; do
  "$RUN" -np $n -- train --run-dir "$work/ghost$n" $par --bn-group 16 ||
    fail "ghost batch norm conv run on $n ranks failed"
done
same_losses "$work/ghost1/metrics.jsonl" "$work/ghost2/metrics.jsonl" 1e-4 "conv, bn-group 16, 1 vs 2 ranks"
noise_scales "$work/ghost1/metrics.jsonl" >"$work/ns1"
noise_scales "$work/ghost2/metrics.jsonl" >"$work/ns2"
[ "$(wc -l <"$work/ns1")" -ge 10 ] || fail "one rank logged no noise scale: $(tail -n 1 "$work/ghost1/metrics.jsonl")"
paste "$work/ns1" "$work/ns2" | awk '
  NF != 2 || $1 <= 0 { bad = 1; exit }
  { d = $1 - $2; if (d < 0) d = -d; if (d > 1e-4 * $1) { bad = 1; exit } }
  END { exit bad }' || { paste "$work/ns1" "$work/ns2" >&2; fail "the noise scale of one rank (two halves) and of two ranks differ"; }

# 2 ranks, small buckets (pieces cut tensors): every sum is a + b whichever
# way, so the parameters and the optimizer state end with the same bits
for mode in shard-optimizer no-shard-optimizer no-shared-memory no-overlap; do
  "$RUN" -np 2 -- train --run-dir "$work/$mode" $par --bucket-kb 4 --$mode ||
    fail "conv run with --$mode failed"
  tensor_sums "$work/$mode/checkpoints/step-00000012.ckpt" >"$work/$mode.sums"
done
grep -q 'optimizer  *conv2.weight.m ' "$work/shard-optimizer.sums" ||
  fail "the sharded checkpoint has no momentum of conv2.weight"
for mode in no-shard-optimizer no-shared-memory no-overlap; do
  cmp -s "$work/shard-optimizer.sums" "$work/$mode.sums" ||
    { diff "$work/shard-optimizer.sums" "$work/$mode.sums" >&2; fail "--$mode ended with other bits than the default"; }
  same_losses "$work/shard-optimizer/metrics.jsonl" "$work/$mode/metrics.jsonl" 0 "--$mode"
done

# LARS (momentum 0, no decay) moves a weight tensor by lr eta |w| and LAMB by
# lr |w|: the trust ratio is per tensor, a conv weight (OC, IC k k) is one;
# a bias is a vector, exempt (trust 1), and moves by its own step instead
# (conv1 has no batch norm after it here: the gradient of a bias that one
# follows is rounding noise)
lnet="in:1x28x28,conv:8k5p2,relu,maxpool:2,${net#*maxpool:2,}"
for o in lars:2:0.1 lamb:1:0.01; do
  opt=${o%%:*} rest=${o#*:}
  n=${rest%%:*} lr=${rest#*:}
  "$RUN" -np $n -- train --run-dir "$work/$opt" $data --model $lnet --epochs 1 --eval-every 0 \
    --ckpt-every-epochs 0 --ckpt-every 1 --max-steps 2 --batch-size 64 --bucket-kb 4 \
    --optimizer $opt --lr $lr --momentum 0 --trust-coef 0.001 ||
    fail "$opt conv run failed"
  dump "$work/$opt/checkpoints/step-00000001.ckpt" $opt.1
  dump "$work/$opt/checkpoints/step-00000002.ckpt" $opt.2
  [ $opt = lars ] && want=$(awk -v l="$lr" 'BEGIN { print l * 0.001 }') || want=$lr
  for t in conv1.weight conv2.weight fc1.weight fc2.weight; do
    set -- $(change $opt.1 $opt.2 $t)
    ratio=$(awk -v d="$1" -v w="$2" 'BEGIN { printf "%.9g", d / w }')
    near "$ratio" "$want" 0.01 || fail "$opt moved $t by $ratio of its norm, not $want: not one trust ratio per tensor"
  done
  for t in conv1.bias fc2.bias; do
    set -- $(change $opt.1 $opt.2 $t)
    ratio=$(awk -v d="$1" -v w="$2" 'BEGIN { printf "%.9g", d / w }')
    near "$ratio" "$want" 0.5 && fail "$opt moved $t by $ratio of its norm, as a weight: a bias is exempt"
  done
done

# ---- 2. SIGTERM and resume ----------------------------------------------------
args="$data --model ${net%,fc:10},dropout:0.1,fc:10 --batch-size 32 --epochs 6 --optimizer adamw
  --lr 0.002 --lr-decay cosine --augment crop:2,flip --log-every 5 --ckpt-every 50 --ckpt-keep 10"
final=step-00000192.ckpt
"$RUN" -np 2 -- train --run-dir "$work/a" $args || fail "the uninterrupted conv run failed"
tensor_sums "$work/a/checkpoints/$final" >"$work/sums.a"
metrics_no_timing "$work/a/metrics.jsonl" >"$work/metrics.a"

"$RUN" -np 2 -- train --run-dir "$work/b" $args &
pid=$!
track $pid
wait_for_step "$work/b" 30
kill -TERM $pid
wait $pid || fail "SIGTERM: the conv run exited with status $?"
[ ! -f "$work/b/checkpoints/$final" ] || fail "SIGTERM came too late to test anything"
"$RUN" -np 2 -- train --run-dir "$work/b" --resume auto --quiet || fail "resume of the conv run failed"
tensor_sums "$work/b/checkpoints/$final" >"$work/sums.b"
cmp -s "$work/sums.a" "$work/sums.b" ||
  { diff "$work/sums.a" "$work/sums.b" >&2; fail "the resumed conv run ended with other parameters"; }
metrics_no_timing "$work/b/metrics.jsonl" >"$work/metrics.b"
cmp -s "$work/metrics.a" "$work/metrics.b" ||
  { diff "$work/metrics.a" "$work/metrics.b" >&2; fail "the resumed conv run logged other metrics"; }

# ---- 3. fine-tuning ---------------------------------------------------------------
tune="$data --model $net --epochs 1 --eval-every 0 --batch-size 64"
"$DDTRAIN" train --run-dir "$work/base" $tune 2>/dev/null || fail "the base conv run failed"
base="$work/base/checkpoints/step-00000016.ckpt"
dump "$base" base

# layers are counted by their weights: conv1 (with bn1), conv2 (with bn2),
# fc1 (with bn3), fc2; with decay 0.5 they learn at 1/8, 1/4, 1/2, 1 of the
# rate: one SGD step without momentum from the same weights says so
for g in 1 0.5; do
  "$DDTRAIN" train --run-dir "$work/decay$g" $tune --init-from "$base" --max-steps 1 \
    --momentum 0 --layer-lr-decay $g 2>/dev/null || fail "fine-tuning with --layer-lr-decay $g failed"
  dump "$work/decay$g/checkpoints/step-00000001.ckpt" decay$g
done
for tm in conv1.weight:0.125 bn1.weight:0.125 conv2.weight:0.25 bn2.bias:0.25 fc1.weight:0.5 fc2.weight:1 fc2.bias:1; do
  t=${tm%%:*} want=${tm#*:}
  full=$(change base decay1 $t | cut -d' ' -f1)
  slow=$(change base decay0.5 $t | cut -d' ' -f1)
  ratio=$(awk -v a="$slow" -v b="$full" 'BEGIN { printf "%.9g", a / b }')
  near "$ratio" "$want" 0.01 || fail "--layer-lr-decay 0.5: $t learned at $ratio of the rate, not $want"
done

# --freeze-layers 2 keeps both conv layers and their batch norms
"$DDTRAIN" train --run-dir "$work/frozen" $tune --seed 7 --init-from "$base" --freeze-layers 2 \
  2>/dev/null || fail "fine-tuning with two frozen conv layers failed"
dump "$work/frozen/checkpoints/step-00000016.ckpt" frozen
for t in conv1.weight conv1.bias bn1.weight bn1.bias conv2.weight conv2.bias bn2.weight bn2.bias; do
  same_tensor base frozen $t || fail "$t moved although frozen"
done
same_tensor base frozen fc1.weight && fail "fc1.weight did not train"

# a head for 12 classes: refused without --reset-head, taken with it
set +e
"$DDTRAIN" train --run-dir "$work/wide" $tune --model "${net%:10}:12" --classes 12 \
  --init-from "$base" 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] || fail "a head of another width was accepted without --reset-head ($status)"
grep -q "fc2.weight has shape 10x32 in the checkpoint, the model needs 12x32" "$work/err" ||
  fail "head mismatch: $(cat "$work/err")"
"$DDTRAIN" train --run-dir "$work/wide" $tune --model "${net%:10}:12" --classes 12 \
  --init-from "$base" --reset-head --freeze-layers 3 2>/dev/null || fail "--reset-head on a conv net failed"
dump "$work/wide/checkpoints/step-00000016.ckpt" wide
grep -q 'param fc2.weight 12x32 ' "$work/wide.txt" || fail "the new head is not 12x32"
same_tensor base wide conv2.weight || fail "conv2.weight moved under the new head although frozen"

# ---- 4. the analysis commands, through the sharp-minima study -----------------------
# (the study's smoke mode: SB 32 and LB 256 on 1024 samples, 2 epochs, Adam)
study="$work/study"
"$top_srcdir/launch/study-sharp-minima" --smoke --model "$net" --out "$study" >"$work/study.log" 2>&1 ||
  { tail -n 20 "$work/study.log" >&2; fail "launch/study-sharp-minima --smoke on a conv spec failed"; }
grep -q "^| $net | [0-9]" "$study/report.md" || fail "the report has no row for the conv net: $(cat "$study/report.md")"
sbrun="$study/runs/batch-size=32_seed=1"
A="$sbrun/checkpoints/step-00000064.ckpt"
B="$study/runs/batch-size=256_seed=1/checkpoints/step-00000008.ckpt"
[ -f "$A" ] && [ -f "$B" ] || fail "the study left no final checkpoints"
"$DDTRAIN" inspect "$A" | grep -q "conv2.weight  *16x200 " || fail "inspect does not show conv2.weight as 16x200"
# as training does, eval refuses flat samples (a CSV of 784 values) for an
# image model, although they have as many values
for split in train test; do
  awk 'BEGIN { for (i = 0; i < 4; i++) { printf "%d", i; for (j = 0; j < 784; j++) printf ",%d", (i * j) % 256; printf "\n" } }' \
    >"$work/flat_$split.csv"
done
set +e
"$DDTRAIN" eval "$A" --data "$work/flat_train.csv" >/dev/null 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] && grep -q "samples of 784x1x1, the model takes 1x28x28" "$work/err" ||
  fail "eval of a conv net on flat samples: status $status, $(cat "$work/err")"

# the study's line (alpha -1, 0, 1, 2), its batch norm recalibrated at each
# point, is finite; the same line with the ends' running statistics
# (--bn-recalibrate 0): at its ends the test columns are what eval says, and
# the train loss (on the seeded subset of 256 samples) is the loss sharpness
# starts from on the same subset
awk -F, '/^[-0-9]/ { for (i = 2; i <= 5; i++) if (!($i + 0 == $i + 0 && $i < 100)) exit 1 }' \
  "$study/interpolate.csv" || fail "the study's line is not finite: $(cat "$study/interpolate.csv")"
"$RUN" -np 2 -- interpolate "$A" "$B" --alpha -1:2:4 --samples 256 --test-samples 256 \
  --bn-recalibrate 0 --out "$work/line0.csv" || fail "interpolate --bn-recalibrate 0"
row=4
for ck in A B; do
  [ $ck = A ] && path=$A || path=$B
  "$RUN" -np 2 -- eval "$path" --test-samples 256 --json >"$work/eval$ck.json" || fail "eval of $path"
  line=$(sed -n "${row}p" "$work/line0.csv")
  for col in 4:test_loss 5:test_accuracy; do
    got=$(printf '%s' "$line" | cut -d, -f"${col%%:*}")
    want=$(json_field "$(cat "$work/eval$ck.json")" "${col#*:}")
    near "$got" "$want" 1e-5 || fail "interpolate at row $row: ${col#*:} $got, eval says $want"
  done
  row=5
done
got=$(sed -n 4p "$work/line0.csv" | cut -d, -f2)
want=$(sed -n 3p "$sbrun/sharpness-1e-3.csv" | cut -d, -f5)
near "$got" "$want" 1e-6 || fail "interpolate at alpha 0: train loss $got, sharpness starts from $want"

# sharpness grows with the box; the Hessian's top eigenvalue on one rank is
# the study's on two
s5=$(sed -n 3p "$sbrun/sharpness-5e-4.csv" | cut -d, -f7)
s3=$(sed -n 3p "$sbrun/sharpness-1e-3.csv" | cut -d, -f7)
awk -v a="$s5" -v b="$s3" 'BEGIN { exit !(a > 0 && b > a) }' || fail "sharpness $s5 at 5e-4, $s3 at 1e-3"
"$RUN" -np 1 -- hessian "$A" --top 1 --iters 5 --samples 256 --out "$work/hessian1.csv" ||
  fail "hessian on one rank"
e1=$(sed -n 3p "$work/hessian1.csv" | cut -d, -f2)
e2=$(sed -n 3p "$sbrun/hessian.csv" | cut -d, -f2)
awk -v a="$e1" 'BEGIN { exit !(a > 0) }' && near "$e1" "$e2" 1e-3 ||
  fail "top eigenvalue $e1 with one rank, $e2 with two"

# a filter-normalised cut through the checkpoint: its centre is eval's loss
"$RUN" -np 2 -- landscape "$A" --dims 2 --range -1:1:3 --filter-norm --samples 0 \
  --bn-recalibrate 0 --out "$work/land.csv" || fail "landscape"
[ "$(grep -c '^[-0-9]' "$work/land.csv")" = 9 ] || fail "a 3x3 grid has 9 rows"
centre=$(grep '^0,0,' "$work/land.csv" | cut -d, -f3)
want=$(json_field "$(cat "$work/evalA.json")" train_loss)
near "$centre" "$want" 1e-5 || fail "landscape centre $centre, eval $want"
edge=$(grep '^1,0,' "$work/land.csv" | cut -d, -f3)
num_lt "$centre" "$edge" || fail "a filter-sized step along the cut does not raise the loss ($centre to $edge)"

# summary and plots
head -n 1 "$study/summary.csv" | grep -q '^run,batch-size,status,steps,train_loss.*,sharpness-1e-3,sharpness-5e-4,hessian$' ||
  fail "summary header: $(head -n 1 "$study/summary.csv")"
grep -q "^runs/batch-size=32_seed=1,32,done,64," "$study/summary.csv" || fail "summary row: $(cat "$study/summary.csv")"
if command -v gnuplot >/dev/null; then
  is_png() { [ "$(head -c 8 "$1" | od -An -c | tr -d ' \n')" = '211PNG\r\n032\n' ] || fail "$1 is not a PNG"; }
  for f in interpolate loss_epoch accuracy_epoch loss_step lr batch noise_scale; do is_png "$study/plots/$f.png"; done
  "$top_srcdir/launch/ddtrain-plot" cut "$work/land.csv" --out "$work/land.png" >/dev/null 2>&1 ||
    fail "plot of the landscape"
  is_png "$work/land.png"
fi
echo "conv net: data parallel, resume, fine-tuning, LARS/LAMB, noise scale, analysis and the study"
