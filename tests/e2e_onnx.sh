#!/bin/sh
# End to end: `ddtrain export --onnx` writes a graph that ONNX's checker
# accepts and that OpenCV's DNN module runs to ddtrain's own logits (same
# class for every test sample, |a - b| <= 1e-4 max(1, |b|)) for an MLP with
# bn and dropout, a small CNN and a residual network; `ddtrain train
# --init-from FILE.onnx` brings a model back whose evaluation is the
# checkpoint's to the last digit, and refuses a model that differs, naming
# the layer.
. "$(dirname "$0")/lib.sh"
need_fashion_mnist
py=/usr/bin/python3 # Debian's, which sees python3-onnx and python3-opencv
"$py" -c 'import onnx, cv2, numpy' 2>/dev/null || {
  echo "SKIP: $py lacks python3-onnx, python3-opencv or python3-numpy (launch/setup installs them)" >&2
  exit 77
}
images=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
common="--data fashion-mnist --train-samples 1024 --batch-size 64 --epochs 1 --quiet --eval-every 0"

# check NAME MODEL...: trains NAME, exports it, checks the graph against eval.
check() {
  name=$1
  shift
  "$DDTRAIN" train --run-dir "$work/$name" $common "$@" || fail "$name: training failed"
  ckpt="$work/$name/checkpoints/step-00000016.ckpt"
  "$DDTRAIN" export "$ckpt" --onnx "$work/$name.onnx" >/dev/null || fail "$name: export failed"
  "$DDTRAIN" eval "$ckpt" --test-samples 500 --predictions "$work/$name.csv" >/dev/null \
    || fail "$name: eval --predictions failed"
  [ "$(wc -l <"$work/$name.csv")" -eq 501 ] || fail "$name: not 500 rows and a header"
  "$py" "$top_srcdir/tests/onnx_check.py" "$work/$name.onnx" "$work/$name.csv" "$images" \
    || fail "$name: the ONNX graph does not give ddtrain's logits"
  # two steps from the checkpoint and two from the graph end bit for bit alike
  steps="--max-steps 2 --ckpt-at-end --seed 3"
  "$DDTRAIN" train --run-dir "$work/$name.c" $common $steps "$@" --init-from "$ckpt" \
    || fail "$name: --init-from the checkpoint failed"
  "$DDTRAIN" train --run-dir "$work/$name.o" $common $steps "$@" --init-from "$work/$name.onnx" \
    || fail "$name: --init-from the ONNX file failed"
  from_ckpt="$work/$name.c/checkpoints/step-00000002.ckpt"
  from_onnx="$work/$name.o/checkpoints/step-00000002.ckpt"
  [ "$(tensor_sums "$from_ckpt")" = "$(tensor_sums "$from_onnx")" ] \
    || fail "$name: training from the ONNX file differs from training from the checkpoint"
  a=$("$DDTRAIN" eval "$from_ckpt" --test-samples 500 --json | sed 's/"checkpoint":"[^"]*",//')
  b=$("$DDTRAIN" eval "$from_onnx" --test-samples 500 --json | sed 's/"checkpoint":"[^"]*",//')
  [ "$a" = "$b" ] || fail "$name: eval differs: $a vs $b"
}

check mlp --model 784-32-16-10 --bn --dropout 0.1
check cnn --model in:1x28x28,conv:4k3p1,bn,relu,maxpool:2,fc:16,bn,relu,fc:10
check res --model in:1x28x28,conv:4k3p1,bn,relu,res:4,res:8s2,avgpool:2,gap,fc:10

# refusals name the first layer that differs, before the run directory exists
refused() {
  want=$1
  shift
  set +e
  "$DDTRAIN" train --run-dir "$work/refused" $common "$@" 2>"$work/err"
  status=$?
  set -e
  [ $status -eq 2 ] || fail "a mismatching model was accepted ($status): $*"
  grep -qF -e "$want" "$work/err" || fail "refusal: expected '$want', got: $(cat "$work/err")"
  [ ! -e "$work/refused" ] || fail "the refused run wrote its run directory"
}
refused "--init-from $work/mlp.onnx: layer 1 (fc:64): the graph has Gemm with weight 32x784, the model needs 64x784" \
  --model 784-64-16-10 --init-from "$work/mlp.onnx"
refused "layer 2 (relu): the graph has BatchNormalization where the model needs Relu" \
  --model 784-32-16-10 --no-bn --init-from "$work/mlp.onnx"
refused "layer 1 (conv:4k5p2): the graph has Conv with kernel_shape [3, 3], the model needs [5, 5]" \
  --model in:1x28x28,conv:4k5p2,bn,relu,maxpool:2,fc:16,bn,relu,fc:10 --init-from "$work/cnn.onnx"
refused "the input normalisation: the graph has Sub with mean 1x28x28, the model needs 784" \
  --model 784-32-16-10 --init-from "$work/cnn.onnx"
# a head of another width: only with --reset-head, which leaves it new
refused "layer 7 (fc:12): the graph has Gemm with weight 10x16, the model needs 12x16" \
  --model 784-32-16-12 --classes 12 --init-from "$work/mlp.onnx"
"$DDTRAIN" train --run-dir "$work/wide" $common --max-steps 2 --model 784-32-16-12 --classes 12 \
  --init-from "$work/mlp.onnx" --reset-head --freeze-layers 2 || fail "--reset-head from ONNX failed"
sum() { "$DDTRAIN" inspect "$1" | grep " $2 " | head -n 1 | sed 's/.*crc32 //'; }
[ "$(sum "$work/mlp/checkpoints/step-00000016.ckpt" fc2.weight)" = \
  "$(sum "$work/wide/checkpoints/step-00000002.ckpt" fc2.weight)" ] \
  || fail "fc2.weight from the ONNX file moved although frozen"

# no half-written file: a graph that cannot be written leaves nothing
set +e
"$DDTRAIN" export "$work/mlp/checkpoints/step-00000016.ckpt" --onnx "$work/none/m.onnx" 2>"$work/err"
status=$?
set -e
[ $status -ne 0 ] || fail "export into a missing folder succeeded"
grep -q "$work/none/m.onnx" "$work/err" || fail "the export error does not name the file: $(cat "$work/err")"
[ ! -e "$work/none" ] || fail "a failed export left a file"
echo "onnx: export checked by onnx.checker and OpenCV; import bit-identical to the checkpoint's; mismatches refused"
