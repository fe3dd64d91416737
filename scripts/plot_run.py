#!/usr/bin/python3
"""Plots of a dptrain run: curves.png, confusion.png, misclassified.png (`dptrain plot` runs it).

Uses Debian's python3-matplotlib, python3-numpy and python3-h5py (scripts/install-deps.sh),
so it runs with /usr/bin/python3 and nothing from PyPI.

  plot_run.py --metrics RUN_DIR/metrics.csv --out DIR
              [--predictions P.csv --data TEST.h5]   # P.csv: dptrain eval --probabilities
"""
import argparse
import csv
import os
import sys

try:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    import numpy as np
except ImportError as e:
    sys.exit(f"plot_run.py: error: {e.name} is missing: apt-get install python3-matplotlib "
             f"python3-numpy (or run scripts/install-deps.sh), then plot again")

CLASS_NAMES = {
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                "ship", "truck"],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                      "Sneaker", "Bag", "Ankle boot"],
}


def save(fig, out):
    """Writes a temporary of its own and renames it over out: a link planted at out is
    replaced, never written through (docs/FAULTS.md, "Files")."""
    tmp = "%s.tmp-%d" % (out, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "wb") as f:
        fig.savefig(f, dpi=100, format="png")
    os.replace(tmp, out)


def split_rows(path):
    """metrics.csv as (interval rows, epoch rows).

    An epoch row is written right after the epoch's last interval row, with the same epoch and
    global step (no two interval rows share a step), so a row equal to its predecessor in
    (epoch, step) is an epoch row.
    """
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    intervals, epochs, prev = [], [], None
    for r in rows:
        key = (r["epoch"], r["step"])
        (epochs if key == prev else intervals).append(r)
        prev = key
    return intervals, epochs


def fractional_epochs(intervals, epochs):
    """Where each interval row lies on the epoch axis: epoch e spans (e - 1, e]."""
    ends = {int(r["epoch"]): int(r["step"]) for r in epochs}
    per_epoch = next((ends[e] - ends.get(e - 1, 0) for e in sorted(ends)), None)
    xs = []
    for r in intervals:
        e, step = int(r["epoch"]), int(r["step"])
        start = ends.get(e - 1, (e - 1) * per_epoch if per_epoch else 0)
        length = ends.get(e, start + per_epoch if per_epoch else 0) - start
        xs.append(e - 1 + (step - start) / length if length > 0 else float(e))
    return xs


def number(v):
    return float(v) if v not in ("", None) else float("nan")


def plot_curves(metrics, out, title):
    intervals, rows = split_rows(metrics)
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4.2))
    epochs = [int(r["epoch"]) for r in rows]
    steps_x = fractional_epochs(intervals, rows)
    for ax, key, name in ((ax_loss, "loss", "loss"), (ax_acc, "accuracy", "accuracy")):
        ax.plot(steps_x, [number(r[key]) for r in intervals], "-", color="tab:blue", alpha=0.3,
                linewidth=1, label="train, per logging interval")
        ax.plot(epochs, [number(r[key]) for r in rows], "o-", color="tab:blue", label="train")
        val = [number(r["val_" + key]) for r in rows]
        if any(v == v for v in val):  # NaN != NaN: a run without validation has none
            ax.plot(epochs, val, "s-", color="tab:orange", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.set_title(name)
        ax.grid(alpha=0.3)
        ax.legend()
        if 0 < len(set(epochs)) <= 20:
            ax.set_xticks(range(0, max(epochs) + 1))
    if not rows:
        fig.text(0.5, 0.5, "no finished epoch in metrics.csv yet", ha="center", fontsize=14)
    ax_acc.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    save(fig, out)
    plt.close(fig)


def read_predictions(path):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = np.array([[float(x) for x in r] for r in reader])
    if len(header) < 4 or header[3] != "p0":
        sys.exit(f"plot_run.py: error: '{path}' has no probability columns; write it with "
                 f"dptrain eval CKPT --predictions {path} --probabilities")
    return rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2].astype(int), rows[:, 3:]


def plot_confusion(labels, predicted, classes, names, out):
    m = np.zeros((classes, classes), dtype=int)
    np.add.at(m, (labels, predicted), 1)
    share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(8.5, 7.5))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for t in range(classes):
        for p in range(classes):
            if m[t, p]:
                ax.text(p, t, str(m[t, p]), ha="center", va="center", fontsize=8,
                        color="white" if share[t, p] > 0.5 else "black")
    ax.set_xticks(range(classes), names, rotation=45, ha="right")
    ax.set_yticks(range(classes), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(m) / max(m.sum(), 1)
    ax.set_title(f"confusion matrix: {m.sum()} test images, accuracy {accuracy:.4f}")
    fig.colorbar(im, ax=ax, label="share of the true class")
    fig.tight_layout()
    save(fig, out)
    plt.close(fig)


def plot_misclassified(data, index, labels, predicted, probs, names, out, count=32):
    import h5py  # Debian's python3-h5py; only this plot needs the images

    p_true = probs[np.arange(len(labels)), labels]
    wrong = np.flatnonzero(predicted != labels)
    worst = wrong[np.argsort(p_true[wrong])][:count]  # least probability on the true class
    cols = 8
    rows = max(1, (len(worst) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 2.0 + 0.6), squeeze=False)
    with h5py.File(data, "r") as f:
        images = f["images"]
        for ax in axes.flat:
            ax.axis("off")
        for ax, k in zip(axes.flat, worst):
            img = images[index[k]]
            ax.imshow(img[:, :, 0] if img.shape[2] == 1 else img, cmap="gray_r" if img.shape[2] == 1 else None)
            ax.set_title(f"true {names[labels[k]]} ({p_true[k]:.2f})\npred {names[predicted[k]]} "
                         f"({probs[k, predicted[k]]:.2f})", fontsize=8, color="firebrick")
    fig.suptitle(f"{len(worst)} worst of {len(wrong)} misclassified test images "
                 f"(probability of the true class, lowest first)")
    if len(worst) == 0:
        fig.text(0.5, 0.5, "no misclassified test image", ha="center", fontsize=14)
    fig.tight_layout()
    save(fig, out)
    plt.close(fig)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--metrics", required=True, help="metrics.csv of a run")
    ap.add_argument("--out", required=True, help="folder for the PNG files")
    ap.add_argument("--predictions", help="dptrain eval --predictions P.csv --probabilities")
    ap.add_argument("--data", help="the HDF5 file those predictions are of (for the images)")
    ap.add_argument("--title", default="", help="title of curves.png")
    a = ap.parse_args()
    plot_curves(a.metrics, f"{a.out}/curves.png", a.title)
    print(f"wrote {a.out}/curves.png")
    if not a.predictions:
        return
    index, labels, predicted, probs = read_predictions(a.predictions)
    classes = probs.shape[1]
    dataset = ""
    if a.data:
        import h5py

        with h5py.File(a.data, "r") as f:
            dataset = f.attrs.get("dataset", b"")
            dataset = dataset.decode() if isinstance(dataset, bytes) else str(dataset)
    names = CLASS_NAMES.get(dataset, [str(c) for c in range(classes)])
    plot_confusion(labels, predicted, classes, names, f"{a.out}/confusion.png")
    print(f"wrote {a.out}/confusion.png")
    if a.data:
        plot_misclassified(a.data, index, labels, predicted, probs, names,
                           f"{a.out}/misclassified.png")
        print(f"wrote {a.out}/misclassified.png")


if __name__ == "__main__":
    main()
