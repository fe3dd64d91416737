"""Keras 3 (TensorFlow) training of a dptrain zoo config on dptrain's own HDF5 shards, for the
accuracy comparison of bench/keras_parity.sh: the same train/validation split (each shard's last
validation_split of samples is held out, as trainer/data_plan.cpp does), pixels scaled by 1/255,
no augmentation, the config's batch and Adam learning rate, then the test accuracy of the final
weights. The shards are the config's data.dir, from the repository root.
usage: keras_parity.py CONFIG EPOCHS SEED"""
import glob, os, sys, time
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import h5py
import numpy as np
import keras
import zoo
from keras_bench import build


def load(files, split):
    xs, ys, vx, vy = [], [], [], []
    for f in files:
        with h5py.File(f, "r") as h:
            x = h["images"][...].astype("float32") / 255.0
            y = h["labels"][...].astype("int64")
        val = int(np.floor(len(x) * split))
        xs.append(x[: len(x) - val]); ys.append(y[: len(y) - val])
        vx.append(x[len(x) - val:]); vy.append(y[len(y) - val:])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(vx), np.concatenate(vy)


if __name__ == "__main__":
    config, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    spec = zoo.load(config)
    if not spec["plain_adam"]:
        raise SystemExit(f"keras_parity: {config} is not plain Adam with a constant learning rate "
                         "and no label smoothing or lookahead; this script reproduces only that")
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    data_dir, name = os.path.join(root, spec["data_dir"]), spec["dataset"]
    train = sorted(glob.glob(os.path.join(data_dir, f"{name}-train-*.h5")))
    if not train:
        raise SystemExit(f"keras_parity: no {name}-train-*.h5 shards in {data_dir}")
    x, y, vx, vy = load(train, spec["validation_split"])
    tx, ty, _, _ = load([os.path.join(data_dir, f"{name}-test.h5")], 0.0)
    keras.utils.set_random_seed(seed)
    model = build(spec)
    model.compile(optimizer=keras.optimizers.Adam(spec["lr"]),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    t0 = time.perf_counter()
    model.fit(x, y, batch_size=spec["batch"], epochs=epochs, shuffle=True,
              validation_data=(vx, vy) if len(vx) else None, verbose=2)
    seconds = time.perf_counter() - t0
    _, acc = model.evaluate(tx, ty, batch_size=500, verbose=0)
    print(f"keras_parity: seed {seed}: test accuracy {100 * acc:.2f} after {epochs} epochs, "
          f"{len(x)} train / {len(vx)} validation / {len(tx)} test, {seconds:.0f} s of training")
