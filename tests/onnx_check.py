#!/usr/bin/python3
"""Checks an ONNX file that `ddtrain export --onnx` wrote against the
predictions `ddtrain eval --predictions` wrote for the same checkpoint.

usage: onnx_check.py MODEL.onnx PREDICTIONS.csv IDX_IMAGES[.gz]

1. onnx.checker.check_model(full_check=True) accepts the file;
2. OpenCV's DNN module runs it on the raw test images (read from the IDX
   file the data set uses, the first rows of the CSV's count), and for
   every sample the predicted class is ddtrain's and every logit a of
   OpenCV is within |a - b| <= 1e-4 * max(1, |b|) of ddtrain's b.
Prints one line of figures; exits 1 on a mismatch.
Run with Debian's /usr/bin/python3 (python3-onnx, python3-opencv).
"""
import csv
import gzip
import struct
import sys

import cv2
import numpy as np
import onnx

TOL = 1e-4


def idx_images(path, n):
    """The first n samples of an IDX file (magic 0x0803 or 0x0801) as uint8."""
    opener = gzip.open if open(path, "rb").read(2) == b"\x1f\x8b" else open
    with opener(path, "rb") as f:
        magic, count = struct.unpack(">II", f.read(8))
        ndim = magic & 0xFF
        dims = struct.unpack(">" + "I" * (ndim - 1), f.read(4 * (ndim - 1)))
        per = int(np.prod(dims))
        if n > count:
            raise SystemExit(f"{path}: {count} samples, the CSV has {n}")
        return np.frombuffer(f.read(n * per), dtype=np.uint8).reshape((n, per))


def main():
    model_path, csv_path, images_path = sys.argv[1:4]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim][1:]

    with open(csv_path) as f:
        rows = list(csv.reader(f))
    header, rows = rows[0], rows[1:]
    classes = sum(1 for h in header if h.startswith("logit"))
    labels = np.array([int(r[1]) for r in rows])
    want_class = np.array([int(r[2]) for r in rows])
    want = np.array([[float(v) for v in r[3:3 + classes]] for r in rows], dtype=np.float64)

    x = idx_images(images_path, len(rows)).astype(np.float32).reshape([len(rows)] + shape)
    net = cv2.dnn.readNetFromONNX(model_path)
    got = []
    for at in range(0, len(rows), 100):
        net.setInput(x[at:at + 100])
        got.append(np.array(net.forward(), dtype=np.float64).reshape(-1, classes))
    got = np.concatenate(got)

    same = int(np.sum(np.argmax(got, axis=1) == want_class))
    diff = np.abs(got - want)
    bound = TOL * np.maximum(1.0, np.abs(want))
    print(f"{model_path}: checker ok; OpenCV {cv2.__version__}: same class {same}/{len(rows)}, "
          f"largest |logit difference| {diff.max():.3g}, largest relative "
          f"{np.max(diff / np.maximum(1.0, np.abs(want))):.3g} (tolerance {TOL}), "
          f"accuracy {np.mean(want_class == labels):.4f}")
    if same != len(rows) or np.any(diff > bound):
        bad = int(np.argmax(np.max(diff - bound, axis=1)))
        print(f"mismatch at sample {bad}: OpenCV {got[bad].tolist()} ddtrain {want[bad].tolist()}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
