#!/bin/sh
# End to end: the launch scripts a researcher works with, through the real
# binary —
#   every launch script's --help prints its opening comment and exits 0;
#   ddtrain-sweep with paired options (a rate per optimizer) crossed with a
#     swept batch size: the points, their options, the progress lines, the
#     summary table at the end (best validation accuracy first);
#   ddtrain summarize on a sweep folder and on the folder above it, its
#     ranking, --rank-by none (settings in numeric order), a bad --rank-by;
#   ddtrain-plot curves of two runs both called "run": two series, two
#     colours, train and test in one colour, nothing on stderr; sweep, cut
#     (interpolation and 2-D landscape) plots;
#   study-sharp-minima on a tiny grid: options, progress, the report;
#   study-local-sgd --smoke with --model at 8 ranks (oversubscribed): the
#     four methods' rows in the report.
. "$(dirname "$0")/lib.sh"
L="$top_srcdir/launch"

# ---- --help ---------------------------------------------------------------------
# every script in launch/, so that a new one is covered without a list to edit
scripts=$(cd "$L" && ls)
for s in build-deb ddtrain-run study-sharp-minima study-batch-growth study-local-sgd; do
  printf '%s\n' $scripts | grep -qx "$s" || fail "launch/$s is missing"
done
for s in $scripts; do
  "$L/$s" --help >"$work/help" 2>"$work/help.err" || fail "$s --help: exit status $?"
  [ ! -s "$work/help.err" ] || fail "$s --help wrote to stderr: $(cat "$work/help.err")"
  # the first line is the opening comment's, and no shell code follows it
  [ "$(head -n 1 "$work/help")" = "$(sed -n 2p "$L/$s" | sed 's/^# //')" ] ||
    fail "$s --help starts with '$(head -n 1 "$work/help")'"
  ! grep -En '^(set -|help\(\)|case |SBATCH|[a-z_]+=\$)' "$work/help" >&2 || fail "$s --help prints shell lines"
done

need_fashion_mnist

# ---- a sweep with paired options -------------------------------------------------
cat >"$work/spec.txt" <<SPEC
base = --data fashion-mnist --train-samples 1024 --test-samples 256 --model 784-16-10 --epochs 1 --val-fraction 0.1 --log-every 4
batch-size = 128 64
pair = optimizer=adam lr=1e-3
SPEC
"$L/ddtrain-sweep" "$work/spec.txt" --out "$work/sweep" -np 1 --pair 'lr=0.1 optimizer=sgd' \
  >"$work/sweep.log" 2>&1 || fail "the sweep failed: $(cat "$work/sweep.log")"
n=0
for b in 128 64; do
  for p in optimizer=adam_lr=1e-3:adam:0.001 optimizer=sgd_lr=0.1:sgd:0.1; do
    d="$work/sweep/batch-size=${b}_${p%%:*}"
    grep -q finished "$d/done" || fail "$d is not done: $(cat "$work/sweep.log")"
    o=${p#*:}
    grep -qx "optimizer = ${o%%:*}" "$d/config.txt" || fail "$d did not run ${o%%:*}"
    awk -F' = ' -v want="${o#*:}" '$1 == "lr" { exit !($2 + 0 == want + 0) }' "$d/config.txt" ||
      fail "$d did not run lr ${o#*:}: $(grep '^lr ' "$d/config.txt")"
    awk -F' = ' -v want="$b" '$1 == "batch-size" { exit !($2 == want) }' "$d/config.txt" || fail "$d: batch size"
    n=$((n + 1))
  done
done
[ "$n" = 4 ] && [ "$(ls -d "$work"/sweep/batch-size=* | wc -l)" = 4 ] || fail "4 points expected: $(ls "$work/sweep")"
grep -q '^sweep: \[4/4\] .* elapsed, ETA ' "$work/sweep.log" || fail "no progress line: $(cat "$work/sweep.log")"
grep -q '^| run | batch-size | optimizer | lr | status |' "$work/sweep.log" || fail "no summary table on stdout"
# the summary file: four rows, best validation accuracy first
sum="$work/sweep/summary.csv"
[ "$(wc -l <"$sum")" = 5 ] || fail "summary.csv: $(cat "$sum")"
vcol=$(head -n 1 "$sum" | tr ',' '\n' | grep -n '^val_accuracy$' | cut -d: -f1)
[ -n "$vcol" ] || fail "summary.csv has no val_accuracy: $(head -n 1 "$sum")"
awk -F, -v c="$vcol" 'NR > 2 && $c > prev { exit 1 } NR > 1 { prev = $c }' "$sum" ||
  fail "summary.csv is not ranked by val_accuracy: $(cat "$sum")"
[ -s "$work/sweep/summary.md" ] || fail "no summary.md"
# a pair that names other options is refused before anything runs
printf 'base = --epochs 1\npair = optimizer=adam lr=1e-3\npair = optimizer=sgd\n' >"$work/bad.txt"
set +e
"$L/ddtrain-sweep" "$work/bad.txt" --out "$work/bad" >"$work/bad.log" 2>&1
status=$?
set -e
[ $status -eq 2 ] && grep -q "line 3: pair names 'optimizer', the first pair 'optimizer lr'" "$work/bad.log" ||
  fail "a mismatched pair: status $status, $(cat "$work/bad.log")"
[ ! -d "$work/bad/optimizer=adam_lr=1e-3" ] || fail "a refused sweep ran a point"

# ---- summarize: folders, ranking, numeric order ----------------------------------
"$DDTRAIN" summarize "$work" >"$work/up.csv" || fail "summarize of the folder above the sweep"
[ "$(grep -c "^$work/sweep/batch-size=" "$work/up.csv")" = 4 ] || fail "summarize two levels down: $(cat "$work/up.csv")"
"$DDTRAIN" summarize "$work/sweep/" --rank-by none | cut -d, -f1 | sed 1d >"$work/order"
printf '%s\n' "$work/sweep/batch-size=64_optimizer=adam_lr=1e-3" "$work/sweep/batch-size=64_optimizer=sgd_lr=0.1" \
  "$work/sweep/batch-size=128_optimizer=adam_lr=1e-3" "$work/sweep/batch-size=128_optimizer=sgd_lr=0.1" >"$work/want"
diff "$work/want" "$work/order" >&2 || fail "--rank-by none: not in numeric order of the settings"
"$DDTRAIN" summarize "$work/sweep" --rank-by test_loss >"$work/tl.csv"
c=$(head -n 1 "$work/tl.csv" | tr ',' '\n' | grep -n '^test_loss$' | cut -d: -f1)
awk -F, -v c="$c" 'NR > 2 && $c < prev { exit 1 } NR > 1 { prev = $c }' "$work/tl.csv" ||
  fail "--rank-by test_loss is not lowest first: $(cat "$work/tl.csv")"
set +e
"$DDTRAIN" summarize "$work/sweep" --rank-by nonsense --out "$work/never.csv" 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] && grep -q -- "--rank-by: 'nonsense' is not valid: allowed auto, none or a result column" "$work/err" ||
  fail "--rank-by nonsense: status $status, $(cat "$work/err")"
[ ! -e "$work/never.csv" ] || fail "a refused summarize wrote its --out file"

# ---- plots -----------------------------------------------------------------------
if command -v gnuplot >/dev/null; then
  is_png() { [ "$(head -c 8 "$1" | od -An -c | tr -d ' \n')" = '211PNG\r\n032\n' ] || fail "$1 is not a PNG"; }
  # two runs with the same folder name
  mkdir -p "$work/a" "$work/b"
  cp -r "$work/sweep/batch-size=64_optimizer=sgd_lr=0.1" "$work/a/run"
  cp -r "$work/sweep/batch-size=128_optimizer=sgd_lr=0.1" "$work/b/run"
  "$L/ddtrain-plot" curves --keep-data --out "$work/curves" "$work/a/run" "$work/b/run" \
    >"$work/plot.out" 2>"$work/plot.err" || fail "plot curves: $(cat "$work/plot.err")"
  [ ! -s "$work/plot.err" ] || fail "plot curves wrote to the terminal: $(cat "$work/plot.err")"
  for f in loss_epoch accuracy_epoch loss_step test_loss_step lr batch noise_scale; do is_png "$work/curves/$f.png"; done
  gp="$work/curves/data/loss_epoch.gp"
  for r in 0 1; do
    [ -s "$work/curves/data/run$r.eval.train_loss.dat" ] || fail "no train loss data of run $r"
  done
  cmp -s "$work/curves/data/run0.train.loss.dat" "$work/curves/data/run1.train.loss.dat" &&
    fail "the two runs called 'run' have the same data"
  for t in "a/run train" "a/run test" "b/run train" "b/run test"; do
    grep -q "title '$t'" "$gp" || fail "loss_epoch has no series '$t': $(cat "$gp")"
  done
  # one colour per run, shared by its train (solid) and test (dashed) lines
  colours=$(grep -o "linecolor rgb '#[0-9a-f]*' title '[ab]/run" "$gp" | sort -u | awk '{ print $3 }' | sort -u | wc -l)
  [ "$colours" = 2 ] || fail "loss_epoch: $colours colours for 2 runs: $(cat "$gp")"
  grep -q "dashtype 2 linecolor rgb '#[0-9a-f]*' title 'a/run test'" "$gp" || fail "test is not dashed"
  grep -q 'set logscale y' "$work/curves/data/lr.gp" || fail "the rate is not on a log scale"
  grep -q 'set key outside' "$gp" || fail "the legend is inside the plot"
  # sweep: one line per value of the other swept options
  "$L/ddtrain-plot" sweep "$sum" --out "$work/sp" --keep-data >/dev/null 2>"$work/plot.err" ||
    fail "plot sweep: $(cat "$work/plot.err")"
  [ ! -s "$work/plot.err" ] || fail "plot sweep wrote to the terminal: $(cat "$work/plot.err")"
  for y in val_accuracy test_accuracy gap; do is_png "$work/sp/sweep_$y.png"; done
  g="$work/sp/data/sweep_test_accuracy.gp"
  grep -q "set title 'test_accuracy against batch-size, by optimizer, lr'" "$g" || fail "sweep title: $(cat "$g")"
  grep -q "title 'optimizer=adam lr=0.001'" "$g" && grep -q "title 'optimizer=sgd lr=0.1'" "$g" ||
    fail "sweep: not one line per optimizer and rate: $(cat "$g")"
  # the interpolation's and the landscape's cuts
  A="$work/a/run" B="$work/b/run"
  "$RUN" -np 1 -- interpolate "$A" "$B" --alpha -1:2:7 --samples 256 --test-samples 128 --out "$work/line.csv" \
    >/dev/null 2>&1 || fail "interpolate"
  "$L/ddtrain-plot" cut "$work/line.csv" --out "$work/cut/line.png" --keep-data >/dev/null 2>"$work/plot.err" ||
    fail "plot of the interpolation: $(cat "$work/plot.err")"
  [ ! -s "$work/plot.err" ] || fail "plot cut wrote to the terminal: $(cat "$work/plot.err")"
  is_png "$work/cut/line.png"
  # the loss axis ends 4x above the highest loss between the minima
  hi=$(awk -F, '/^[-0-9]/ && $1 >= 0 && $1 <= 1 { for (c = 2; c <= 4; c += 2) if ($c > m) m = $c } END { print m * 4 }' "$work/line.csv")
  top=$(sed -n 's/.*set yrange \[[^:]*:\([^]]*\)\].*/\1/p' "$work/cut/cut.gp")
  awk -v a="$hi" -v b="$top" 'BEGIN { exit !(a > 0 && (a - b) ^ 2 < 1e-6 * a * a) }' ||
    fail "interpolation y-range ends at $top, expected $hi"
  "$RUN" -np 1 -- landscape "$A" --dims 2 --range -1:1:9 --samples 256 --out "$work/land.csv" >/dev/null 2>&1 ||
    fail "landscape"
  rm -rf "$work/cut"
  "$L/ddtrain-plot" cut "$work/land.csv" --out "$work/cut/land.png" --keep-data >/dev/null 2>"$work/plot.err" ||
    fail "plot of the landscape: $(cat "$work/plot.err")"
  [ ! -s "$work/plot.err" ] || fail "plot cut wrote to the terminal: $(cat "$work/plot.err")"
  is_png "$work/cut/land.png"
  [ -s "$work/cut/contour_labels.dat" ] || fail "the landscape's contours have no labels"
  grep -q 'with labels' "$work/cut/cut.gp" && grep -q 'unset key' "$work/cut/cut.gp" || fail "contour labels: $(cat "$work/cut/cut.gp")"
fi

# ---- the study on a tiny grid ----------------------------------------------------
"$L/study-sharp-minima" --smoke --model 784-16-10 --seeds 2 --epochs 1 --samples 1024 -np 1 --out "$work/study" \
  >"$work/study.log" 2>&1 || { tail -n 20 "$work/study.log" >&2; fail "the tiny study failed"; }
r="$work/study/report.md"
grep -q '^study: \[13/13\] done in .*elapsed, ETA ' "$work/study.log" || fail "no study progress: $(cat "$work/study.log")"
grep -q '^sweep: \[4/4\] ' "$work/study.log" || fail "no training progress: $(cat "$work/study.log")"
grep -q '^| 784-16-10 | [0-9.]* ± [0-9.]* (n=2) |' "$r" || fail "the report lacks mean ± sd (n=2): $(cat "$r")"
grep -q 'large-batch runs took far fewer optimizer steps: 10 per run against 85' "$r" ||
  fail "the report does not say the large batch took fewer steps: $(cat "$r")"
grep -q '^| optimizer steps | 85 ± 0 (n=2) | 10 ± 0 (n=2) |' "$r" || fail "steps row: $(cat "$r")"
! grep -n "$work" "$r" >&2 || fail "the report has absolute paths"
grep -q '^| runs/batch-size=12_seed=1 |' "$r" || fail "the report's runs are not relative: $(cat "$r")"

# ---- study-local-sgd at 8 ranks -------------------------------------------------
"$L/study-local-sgd" --smoke --model 784-16-10 -np 8 --out "$work/lsgd" >"$work/lsgd.log" 2>&1 ||
  { tail -n 20 "$work/lsgd.log" >&2; fail "study-local-sgd --smoke -np 8 failed"; }
r="$work/lsgd/report.md"
grep -q 'K = 8 ranks' "$r" || fail "the report does not say 8 ranks: $(cat "$r")"
grep -q '`784-16-10`' "$r" || fail "the report does not name --model: $(head -n 5 "$r")"
for m in '^| SB: mini-batch SGD, batch 64 |' '^| LB: mini-batch SGD, batch 256 ' '^| local SGD, H = 4, 8 per rank ' '^| post-local SGD '; do
  grep -q "$m" "$r" || fail "the report lacks the row '$m': $(cat "$r")"
done
! grep -q '| - |' "$r" || fail "the report has empty cells: $(cat "$r")"
for d in sb lb local post; do
  grep -q "^model = 784-16-10$" "$work/lsgd/runs/${d}_seed=1/config.txt" || fail "$d did not train --model 784-16-10"
done
echo "scripts: --help, paired sweep, summarize of folders, plots, the studies' options and reports"
