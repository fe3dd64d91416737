"""Compares exported models with dptrain's own predictions (tests/sharing/test_export.cpp).

  compare_exports.py MANIFEST
MANIFEST: one line per model, tab-separated: name, model.keras, model.onnx, predictions.csv
(dptrain eval --predictions --probabilities), data.h5 (the images evaluated), total params.
Loads each .keras with keras.models.load_model (no custom objects) and each .onnx with
onnx.checker (full check) and onnxruntime, runs them on the images (pixel / 255, NHWC) and
prints one line per model and format:
  NAME FORMAT argmax_equal=K/N decided_equal=K/N max_abs_dprob=X params=P
"decided": samples whose top two dptrain probabilities differ by more than 1e-4 (ties in a
random-init model may fall either way within float rounding).
Exit 1 if any decided argmax differs, a probability differs by more than 1e-4, or a parameter
count differs; 0 otherwise.
"""
import sys

import h5py
import keras
import numpy as np
import onnx
import onnxruntime as ort

TOLERANCE = 1e-4


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z.astype(np.float64))
    return e / e.sum(axis=1, keepdims=True)


def compare(name, fmt, logits, rows, params, expected_params):
    probs = rows[:, 3:]
    ours = rows[:, 2].astype(int)
    top2 = np.sort(probs, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > TOLERANCE
    theirs = logits.argmax(axis=1)
    dprob = float(np.abs(softmax(logits) - probs).max())
    n = len(ours)
    print(f"{name} {fmt} argmax_equal={(theirs == ours).sum()}/{n} "
          f"decided_equal={(theirs == ours)[decided].sum()}/{decided.sum()} "
          f"max_abs_dprob={dprob:.2e} params={params}", flush=True)
    return (theirs == ours)[decided].all() and dprob <= TOLERANCE and params == expected_params


def main():
    ok = True
    for line in open(sys.argv[1]):
        name, keras_path, onnx_path, pred, data, total = line.rstrip("\n").split("\t")
        rows = np.loadtxt(pred, delimiter=",", skiprows=1, ndmin=2)
        with h5py.File(data, "r") as f:
            x = f["images"][: len(rows)].astype(np.float32) / 255.0
        model = keras.models.load_model(keras_path)
        logits = np.asarray(model.predict(x, batch_size=100, verbose=0))
        ok &= compare(name, "keras", logits, rows, model.count_params(), int(total))

        proto = onnx.load(onnx_path)
        onnx.checker.check_model(proto, full_check=True)
        # Scalars (0-d: gelu's and rescaling's constants) are not parameters.
        params = sum(int(np.prod(t.dims)) for t in proto.graph.initializer if len(t.dims) > 0)
        session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
        logits = session.run(["logits"], {"input": x})[0]
        ok &= compare(name, "onnx", logits, rows, params, int(total))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
