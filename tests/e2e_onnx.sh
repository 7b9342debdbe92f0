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
}

check mlp --model 784-32-16-10 --bn --dropout 0.1
check cnn --model in:1x28x28,conv:4k3p1,bn,relu,maxpool:2,fc:16,bn,relu,fc:10
check res --model in:1x28x28,conv:4k3p1,bn,relu,res:4,res:8s2,avgpool:2,gap,fc:10

# no half-written file: a graph that cannot be written leaves nothing
set +e
"$DDTRAIN" export "$work/mlp/checkpoints/step-00000016.ckpt" --onnx "$work/none/m.onnx" 2>"$work/err"
status=$?
set -e
[ $status -ne 0 ] || fail "export into a missing folder succeeded"
grep -q "$work/none/m.onnx" "$work/err" || fail "the export error does not name the file: $(cat "$work/err")"
[ ! -e "$work/none" ] || fail "a failed export left a file"
echo "onnx: export checked by onnx.checker and OpenCV"
