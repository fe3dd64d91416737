"""Keras 3 (TensorFlow backend) training throughput of a dptrain zoo config on random tensors.
usage: keras_bench.py CONFIG"""
import os, sys, time
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import numpy as np
import keras
import zoo


def build(spec):
    model = keras.Sequential([keras.Input(shape=tuple(spec["input"]))])
    for kind, o in spec["layers"]:
        if kind == "conv2d":
            model.add(keras.layers.Conv2D(o["filters"], o["kernel"], strides=o.get("strides", 1),
                                          padding=o.get("padding", "valid"), activation=o.get("activation")))
        elif kind == "max_pool":
            model.add(keras.layers.MaxPooling2D(o.get("pool", 2), padding=o.get("padding", "valid")))
        elif kind == "avg_pool":
            model.add(keras.layers.AveragePooling2D(o.get("pool", 2), padding=o.get("padding", "valid")))
        elif kind == "batch_norm":
            model.add(keras.layers.BatchNormalization())
        elif kind == "dropout":
            model.add(keras.layers.Dropout(o.get("rate", 0.5)))
        elif kind == "flatten":
            model.add(keras.layers.Flatten())
        elif kind == "dense":
            model.add(keras.layers.Dense(o["units"], activation=o.get("activation")))
        else:
            raise SystemExit(f"keras_bench: layer {kind} not mapped")
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


if __name__ == "__main__":
    spec = zoo.load(sys.argv[1])
    b = spec["batch"]
    x = np.random.rand(b * 48, *spec["input"]).astype("float32")
    y = np.random.randint(0, 10, b * 48)
    model = build(spec)
    model.fit(x[: b * 8], y[: b * 8], batch_size=b, epochs=1, verbose=0)  # warm-up and tracing
    t0 = time.perf_counter()
    model.fit(x[b * 8:], y[b * 8:], batch_size=b, epochs=1, verbose=0)
    print(f"{40 * b / (time.perf_counter() - t0):.0f}")
