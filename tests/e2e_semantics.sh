#!/bin/sh
# End to end: options whose meaning could change a run's results without a
# word are refused or say what they do. A changed --epochs on resume of a
# length-shaped decay (refused; --extend accepts and says what the schedule
# becomes), a resume on another rank count (says what batch norm changes),
# --resume auto with nothing to resume (says so; refuses a missing directory
# unless the command line defines the run), a batch schedule whose rate
# cannot follow (warned; each change announced), optimizer options that
# contradict --optimizer (refused) and Adam at SGD's default rate (warned),
# --freeze-layers (the frozen batch norms' running statistics stay; logged),
# a batch too small per rank to gain from more ranks (warned).
. "$(dirname "$0")/lib.sh"
need_fashion_mnist

small="--data fashion-mnist --model 784-64-10 --train-samples 4096 --test-samples 500
  --batch-size 512 --log-every 1 --quiet"

# The rate of step $2 in the metrics of run $1.
lr_at() {
  grep '"kind":"train"' "$1/metrics.jsonl" | grep "\"step\":$2," | sed -n 's/.*"lr":\([^,}]*\).*/\1/p'
}

# 1. --epochs on resume: a finished 2-epoch cosine run resumed with --epochs 3
"$DDTRAIN" train --run-dir "$work/len" $small --lr-decay cosine --epochs 2 2>/dev/null ||
  fail "the 2-epoch cosine run failed"
set +e
"$DDTRAIN" train --run-dir "$work/len" --resume auto --epochs 3 --quiet 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] || fail "--epochs 3 on a 2-epoch cosine run: exit $status, want 2"
grep -q -- "--epochs: 3 differs from the resumed run's 2, and the cosine decay's shape depends on the length" "$work/err" ||
  { cat "$work/err" >&2; fail "--epochs on resume: the refusal does not name both values"; }
grep -q -- "--extend" "$work/err" || fail "--epochs on resume: the refusal does not mention --extend"
[ "$(grep -c '"kind":"train"' "$work/len/metrics.jsonl")" -eq 16 ] ||
  fail "a refused resume wrote to metrics.jsonl"
"$DDTRAIN" train --run-dir "$work/len" --resume auto --epochs 3 --extend --quiet 2>"$work/err" ||
  { cat "$work/err" >&2; fail "--extend: the resume failed"; }
grep -q "resume --extend: the cosine decay runs from step 16 (epoch 2.000, lr 0.025) to step 24 (the end of epoch 3, lr 0)" "$work/err" ||
  { cat "$work/err" >&2; fail "--extend does not say what the schedule becomes"; }
[ "$(lr_at "$work/len" 17)" = 0.025 ] || fail "--extend: step 17's rate is $(lr_at "$work/len" 17), want 0.025"
# a shape that does not depend on the length takes a new --epochs as before
"$DDTRAIN" train --run-dir "$work/const" $small --epochs 1 2>/dev/null || fail "the constant run failed"
"$DDTRAIN" train --run-dir "$work/const" --resume auto --epochs 2 --quiet 2>/dev/null ||
  fail "a constant-rate run resumed with another --epochs was refused"

# 2. resume on another rank count says what changes with batch norm
ranks() { # NAME NP1 NP2 OPTIONS...: trains 1 epoch on NP1 ranks, resumes on NP2 for a 2nd
  name=$1 np1=$2 np2=$3
  shift 3
  "$RUN" -np "$np1" -- train --run-dir "$work/$name" $small --epochs 1 "$@" 2>/dev/null ||
    fail "$name: the run on $np1 ranks failed"
  "$RUN" -np "$np2" -- train --run-dir "$work/$name" --resume auto --epochs 2 --quiet \
    2>"$work/$name.err" || { cat "$work/$name.err" >&2; fail "$name: the resume on $np2 ranks failed"; }
}
ranks bn 2 1
grep -q "written by 2 ranks and this run has 1: the math changes: batch norm's statistics are taken over each rank's slice, which goes from 256 to 512 samples" "$work/bn.err" ||
  { cat "$work/bn.err" >&2; fail "resume on another rank count with batch norm: no word of what changes"; }
grep -q "the math is the same" "$work/bn.err" && fail "resume with batch norm on another rank count still says the math is the same"
ranks ghost 2 1 --bn-group 64
grep -q "batch norm keeps its groups of 64 samples (--bn-group), so the math is the same" "$work/ghost.err" ||
  { cat "$work/ghost.err" >&2; fail "resume with --bn-group 64: not said to be the same math"; }
ranks nobn 1 2 --no-bn
grep -q "written by 1 rank and this run has 2: the model has no batch norm, so the math is the same" "$work/nobn.err" ||
  { cat "$work/nobn.err" >&2; fail "resume without batch norm: not said to be the same math"; }

# 3. --resume auto with nothing to resume: a missing run directory is refused
# unless the command line defines the run; a start says so on stderr and in
# metrics.jsonl
set +e
"$DDTRAIN" train --run-dir "$work/typo" --resume auto --quiet 2>"$work/err"
status=$?
set -e
[ $status -eq 2 ] || fail "--resume auto on a missing directory without run options: exit $status, want 2"
grep -q -- "--resume auto: the run directory $work/typo does not exist, and the command line does not say what to train" "$work/err" ||
  { cat "$work/err" >&2; fail "--resume auto on a missing directory: no clear refusal"; }
[ ! -e "$work/typo" ] || fail "a refused --resume auto created the run directory"
"$DDTRAIN" train --run-dir "$work/fresh" --resume auto $small --epochs 1 2>"$work/err" ||
  { cat "$work/err" >&2; fail "--resume auto on a missing directory with --model failed"; }
grep -q "does not exist: nothing to resume, starting a new run there from step 0" "$work/err" ||
  { cat "$work/err" >&2; fail "--resume auto on a missing directory: the start is not announced"; }
[ "$(head -n 1 "$work/fresh/metrics.jsonl")" = '{"kind":"start","step":0,"resume":"auto","reason":"no run directory"}' ] ||
  fail "metrics.jsonl does not begin with the start line: $(head -n 1 "$work/fresh/metrics.jsonl")"
mkdir "$work/empty"
"$DDTRAIN" train --run-dir "$work/empty" --resume auto $small --epochs 2 --max-steps 3 2>"$work/err" ||
  { cat "$work/err" >&2; fail "--resume auto on an empty directory failed"; }
grep -q "has no checkpoint yet: starting the run from step 0 (nothing to resume" "$work/err" ||
  { cat "$work/err" >&2; fail "--resume auto on an empty directory: the start is not announced"; }
[ "$(head -n 1 "$work/empty/metrics.jsonl")" = '{"kind":"start","step":0,"resume":"auto","reason":"no checkpoint"}' ] ||
  fail "metrics.jsonl of the empty directory does not begin with the start line"
# a real resume keeps the start line and adds none
"$DDTRAIN" train --run-dir "$work/empty" --resume auto --max-steps 0 --quiet 2>/dev/null ||
  fail "the resume after the start failed"
[ "$(grep -c '"kind":"start"' "$work/empty/metrics.jsonl")" -eq 1 ] || fail "a resume wrote another start line"
# a plain start (no --resume) writes no start line: its metrics are as before
[ "$(grep -c '"kind":"start"' "$work/len/metrics.jsonl")" -eq 0 ] || fail "a plain run wrote a start line"

# 4. a batch schedule without a scaling rule: warned; each change announced,
# and the batch shown in the progress line
"$DDTRAIN" train --run-dir "$work/bs" --data fashion-mnist --model 784-64-10 --train-samples 4096 \
  --test-samples 500 --batch-size 512 --log-every 4 --epochs 3 --batch-schedule 1:1024,2:2048 \
  2>"$work/err" || { cat "$work/err" >&2; fail "the batch-schedule run failed"; }
grep -q -- "--batch-schedule 1:1024,2:2048 with --lr-scaling none: the rate will not follow the batch" "$work/err" ||
  { cat "$work/err" >&2; fail "--batch-schedule with --lr-scaling none: no warning"; }
grep -q "epoch 1: the global batch changes from 512 to 1024 (--batch-schedule), 1024 per rank; lr 0.1" "$work/err" ||
  { cat "$work/err" >&2; fail "the change to 1024 is not announced"; }
grep -q "epoch 2: the global batch changes from 1024 to 2048" "$work/err" || fail "the change to 2048 is not announced"
grep -q "step 14/14 epoch 2.50/3 .* lr 0.1 batch 2048 " "$work/err" ||
  { cat "$work/err" >&2; fail "the progress line does not show the batch"; }
"$DDTRAIN" train --run-dir "$work/bs2" $small --epochs 2 --batch-schedule 1:1024 --lr-scaling linear \
  2>"$work/err" || fail "the scaled batch-schedule run failed"
grep -q "will not follow" "$work/err" && fail "warned although --lr-scaling linear makes the rate follow"

# 5. optimizer options that contradict --optimizer or that it would ignore
refused() { # WHAT OPTIONS...: exit 2, the message starts with WHAT, nothing written
  what=$1
  shift
  set +e
  "$DDTRAIN" train --run-dir "$work/opt" $small --epochs 1 "$@" 2>"$work/err"
  status=$?
  set -e
  [ $status -eq 2 ] || fail "$*: exit $status, want 2"
  grep -q -- "^ddtrain train: $what" "$work/err" || { cat "$work/err" >&2; fail "$*: no message '$what'"; }
  [ ! -e "$work/opt" ] || fail "$*: a refused run wrote its run directory"
}
refused "--nesterov: not with --optimizer adam" --optimizer adam --nesterov
refused "--nesterov: not with --optimizer adamw" --optimizer adamw --lr 1e-3 --nesterov
refused "--wd-mode: only for --optimizer sgd, not adamw: AdamW's decay is decoupled" --optimizer adamw --wd-mode l2
refused "--wd-mode: only for --optimizer sgd, not adam" --optimizer adam --wd-mode decoupled
refused "--wd-mode: only for --optimizer sgd, not lars" --optimizer lars --wd-mode=decoupled
refused "--trust-coef: only for --optimizer lars, not sgd" --trust-coef 0.01
refused "--beta2/--adam-eps: only for --optimizer adam, adamw or lamb, not sgd" --beta2 0.99
refused "--nesterov: needs momentum" --nesterov --momentum 0
# Adam at SGD's default rate warns; a rate given does not
"$DDTRAIN" train --run-dir "$work/adam" $small --epochs 1 --optimizer adam --max-steps 1 2>"$work/err" ||
  fail "adam at the default rate failed"
grep -q -- "--optimizer adam at --lr 0.1, the default chosen for SGD" "$work/err" ||
  { cat "$work/err" >&2; fail "adam at the default rate: no warning"; }
"$DDTRAIN" train --run-dir "$work/adam2" $small --epochs 1 --optimizer adam --lr 1e-3 --max-steps 1 \
  2>"$work/err" || fail "adam at --lr 1e-3 failed"
grep -q "default chosen for SGD" "$work/err" && fail "adam with --lr given still warns"
"$DDTRAIN" train --run-dir "$work/sgdn" $small --epochs 1 --nesterov --max-steps 1 2>/dev/null ||
  fail "sgd --nesterov was refused"

# 6. --freeze-layers freezes the frozen layers' batch-norm running statistics
# too, and says what it froze
crc() { "$DDTRAIN" inspect "$1" | grep " $2 " | head -n 1 | sed 's/.*crc32 //'; }
"$DDTRAIN" train --run-dir "$work/base" $small --epochs 1 2>/dev/null || fail "the base run failed"
"$DDTRAIN" train --run-dir "$work/tune" $small --epochs 1 --seed 7 \
  --init-from "$work/base/checkpoints/step-00000008.ckpt" --freeze-layers 1 2>"$work/err" ||
  { cat "$work/err" >&2; fail "fine-tuning with a frozen layer failed"; }
[ "$(crc "$work/base/checkpoints/step-00000008.ckpt" bn.running)" = \
  "$(crc "$work/tune/checkpoints/step-00000008.ckpt" bn.running)" ] ||
  fail "bn1's running statistics moved although --freeze-layers 1 froze bn1"
[ "$(crc "$work/base/checkpoints/step-00000008.ckpt" fc2.weight)" != \
  "$(crc "$work/tune/checkpoints/step-00000008.ckpt" fc2.weight)" ] || fail "fc2 did not train"
grep -q -- "--freeze-layers 1: fc1, bn1 frozen (weights, and batch norms' running statistics); 650 of 51018 parameters train" "$work/err" ||
  { cat "$work/err" >&2; fail "--freeze-layers does not say what it froze"; }

# 7. few samples per rank: warned, with the figures; a full slice is not
"$RUN" -np 2 -- train --run-dir "$work/tiny" $small --batch-size 16 --max-steps 2 2>"$work/tiny.err" ||
  fail "batch 16 on 2 ranks failed: $(cat "$work/tiny.err")"
grep -q "8 samples per rank (global batch 16 over 2 ranks).*more ranks gain little" "$work/tiny.err" ||
  fail "no small-slice warning at 8 samples per rank: $(cat "$work/tiny.err")"
# the parameters it counts are the model's, not the arena's padded length
P=$(sed -n 's/.*training .* (\([0-9]*\) parameters).*/\1/p' "$work/tiny.err")
grep -q "updates all $P parameters" "$work/tiny.err" ||
  fail "the small-slice warning does not count the model's $P parameters: $(grep 'samples per rank' "$work/tiny.err")"
"$RUN" -np 2 -- train --run-dir "$work/wide" $small --batch-size 64 --max-steps 2 2>"$work/wide.err" ||
  fail "batch 64 on 2 ranks failed: $(cat "$work/wide.err")"
! grep -q "samples per rank" "$work/wide.err" || fail "warned at 32 samples per rank: $(cat "$work/wide.err")"

echo "e2e_semantics: ok"
