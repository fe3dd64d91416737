"""The PyTorch reference of configs/cifar10_fast.yaml (Keller Jordan's airbench recipe) for
bench/airbench_vs_torch.sh: the same net, initialisation, optimizer, schedule, lookahead,
augmentation and flip+translate test-time augmentation, written the way a PyTorch user would
(torch.optim.SGD, nn modules, one process), trained on dptrain's own HDF5 shards, with the test
set evaluated after every epoch. It prints one line per epoch in dptrain's format ("Epoch test:
epoch E - accuracy: A - loss: L - training time T s - since start W s"), so one parser reads both.
The hyperparameters come from the config's train section; the layer list must be cifar10_fast's
shape (checked). usage: airbench_torch.py CONFIG SEED [THREADS] [MEMORY_FORMAT: cl|nchw] [EVAL_FROM: the first
epoch whose test accuracy is measured; 1 by default] [PRECISION: fp32|bf16 (autocast), to match
what dptrain's precision: auto chose]"""
import glob, math, os, sys, time
import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml


def load(files):
    xs, ys = [], []
    for f in files:
        with h5py.File(f, "r") as h:
            xs.append(h["images"][...])
            ys.append(h["labels"][...].astype("int64"))
    return np.concatenate(xs), np.concatenate(ys)


def whitening_weights(images, filters, kernel, max_images=5000, eps_rel=5e-4):
    """Filters that whiten kernel x kernel patches: +-eigenvectors of the patch covariance scaled
    by 1/sqrt(eigenvalue + eps), largest first, and a bias that zeroes their mean (as
    models/whitening.cpp, from the first max_images training images, pixels / 255)."""
    x = torch.from_numpy(images[:max_images]).double().permute(0, 3, 1, 2) / 255.0
    patches = F.unfold(x, kernel).transpose(1, 2).reshape(-1, x.shape[1] * kernel * kernel)
    mean = patches.mean(0)
    cov = (patches - mean).T @ (patches - mean) / patches.shape[0]
    values, vectors = torch.linalg.eigh(cov)  # ascending
    eps = eps_rel * torch.trace(cov) / cov.shape[0]
    half = filters // 2
    top = vectors[:, -half:].flip(1) / torch.sqrt(values[-half:].flip(0).clamp(min=0) + eps)
    w = torch.cat([top, -top], 1).T  # (filters, c * k * k) in unfold's (c, ky, kx) order
    bias = -(w @ mean)
    return w.reshape(filters, x.shape[1], kernel, kernel).float(), bias.float()


def dirac_(conv):
    """Identity for the first in_channels filters, uniform +-1/sqrt(fan_in) for the rest."""
    w = conv.weight.data
    out_c, in_c, kh, kw = w.shape
    limit = 1.0 / math.sqrt(in_c * kh * kw)
    w.uniform_(-limit, limit)
    w[:in_c] = 0
    w[torch.arange(in_c), torch.arange(in_c), (kh - 1) // 2, (kw - 1) // 2] = 1


class Net(nn.Module):
    """cifar10_fast's layer list, read from the config: whitening conv + gelu, then conv /
    max_pool / batch_norm (no gamma) / gelu in the config's order, a final pool, a bias-free
    dense layer and the logit scale."""

    def __init__(self, layers, train_images):
        super().__init__()
        mods, c = [], 3
        for i, entry in enumerate(layers):
            (kind, o), = entry.items()
            o = o or {}
            if kind == "conv2d" and o.get("kernel_initializer") == "whiten":
                conv = nn.Conv2d(c, o["filters"], o["kernel"], bias=o.get("use_bias", True))
                w, b = whitening_weights(train_images, o["filters"], o["kernel"])
                conv.weight.data.copy_(w)
                if conv.bias is not None:
                    conv.bias.data.copy_(b)
                conv.requires_grad_(not (o.get("trainable", True) is False))
                mods.append(conv)
            elif kind == "conv2d":
                assert o.get("padding") == "same" and o.get("kernel_initializer") == "dirac", entry
                conv = nn.Conv2d(c, o["filters"], o["kernel"], padding="same",
                                 bias=o.get("use_bias", True))
                dirac_(conv)
                mods.append(conv)
            elif kind == "max_pool":
                assert set(o) <= {"pool"}, entry  # stride = pool, valid padding
                mods.append(nn.MaxPool2d(o.get("pool", 2)))
            elif kind == "batch_norm":
                # Keras' momentum m is PyTorch's 1 - m; scale: false is a gamma fixed at 1.
                bn = nn.BatchNorm2d(c, eps=o.get("epsilon", 1e-3), momentum=1 - o.get("momentum", 0.99))
                bn.weight.requires_grad_(o.get("scale", True) is not False)
                mods.append(bn)
            elif kind == "gelu":
                mods.append(nn.GELU())
            elif kind == "flatten":
                mods.append(nn.Flatten())
            elif kind == "dense":
                assert o.get("use_bias") is False and o.get("kernel_initializer") == "lecun_uniform"
                dense = nn.Linear(c, o["units"], bias=False)
                limit = math.sqrt(3.0 / c)
                dense.weight.data.uniform_(-limit, limit)
                mods.append(dense)
            elif kind == "rescaling":
                assert set(o) <= {"scale"}, entry
                self.scale = o["scale"]
            else:
                raise SystemExit(f"airbench_torch: layer {i} ({kind}) is not in cifar10_fast's recipe")
            if kind == "conv2d":
                c = o["filters"]
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        return self.body(x) * self.scale


def onecycle(step, base, s, steps):
    """trainer/optim/lr_schedule.cpp's onecycle: linear up over pct_start, then down."""
    total = max(1.0, steps - 1)
    up = s["pct_start"] * total
    start = base / s["div_factor"]
    end = start / s["final_div_factor"]
    if step < up:
        return start + (base - start) * step / up
    return base + (end - base) * min(1.0, (step - up) / max(total - up, 1.0))


def batch_views(padded, index, pad, dy, dx, flip):
    """Crops of padded (N, H+2p, W+2p, C, uint8) at offsets dy, dx in [-pad, pad], mirrored where
    flip is set, as float NCHW / 255."""
    n, hp, wp, _ = padded.shape
    h, w = hp - 2 * pad, wp - 2 * pad
    ys = torch.arange(h)[None, :] + (dy + pad)[:, None]
    xs = torch.arange(w)[None, :].expand(len(index), w)
    xs = torch.where(flip[:, None], w - 1 - xs, xs) + (dx + pad)[:, None]
    out = padded[index[:, None, None], ys[:, :, None], xs[:, None, :]]
    return out.permute(0, 3, 1, 2).float().div_(255.0)


def evaluate(model, padded_test, labels, fmt, bf16, batch=1000):
    """Flip + translate TTA, as trainer/evaluator.cpp: the weighted mean softmax of the image and
    its mirror (1/4 each) and of both shifted one pixel up-left and down-right with reflected
    borders (1/8 each)."""
    model.eval()
    correct, loss, n = 0, 0.0, len(labels)
    views = [(0, False, 0.25), (0, True, 0.25), (-1, False, 0.125), (-1, True, 0.125),
             (1, False, 0.125), (1, True, 0.125)]
    with torch.no_grad():
        for b in range(0, n, batch):
            idx = torch.arange(b, min(n, b + batch))
            p = 0
            for d, flip, weight in views:
                shift = torch.full((len(idx),), d)
                x = batch_views(padded_test, idx, 1, shift, shift, torch.full((len(idx),), flip))
                with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                    z = model(x.contiguous(memory_format=fmt))
                p = p + weight * F.softmax(z.double(), 1)
            y = labels[idx]
            correct += int((p.argmax(1) == y).sum())
            loss += float(-torch.log(p[torch.arange(len(idx)), y].clamp_min(1e-300)).sum())
    model.train()
    return correct / n, loss / n


def main():
    config, seed = sys.argv[1], int(sys.argv[2])
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    fmt = torch.channels_last if (sys.argv[4] if len(sys.argv) > 4 else "cl") == "cl" else torch.contiguous_format
    eval_from = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    bf16 = (sys.argv[6] if len(sys.argv) > 6 else "fp32") == "bf16"
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    cfg = yaml.safe_load(open(config))
    tc, data = cfg["train"], cfg["data"]
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
    data_dir = os.path.join(root, data["dir"])
    files = sorted(glob.glob(os.path.join(data_dir, "cifar10-train-*.h5")))
    if not files or data.get("validation_split", 0) != 0:
        raise SystemExit(f"airbench_torch: needs cifar10-train-*.h5 in {data_dir} and validation_split 0")
    x, y = load(files)
    tx, ty = load([os.path.join(data_dir, "cifar10-test.h5")])
    pad = data["augment"]["random_crop"]
    reflect = lambda a, p: F.pad(torch.from_numpy(a).permute(0, 3, 1, 2).float(), (p,) * 4,
                                 mode="reflect").to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    padded, padded_test = reflect(x, pad), reflect(tx, 1)
    labels, test_labels = torch.from_numpy(y), torch.from_numpy(ty)

    model = Net(cfg["model"]["layers"], x).to(memory_format=fmt)
    o = tc["optimizer"]["sgd"]
    lr, wd, scale = o["lr"], o["weight_decay"], o.get("norm_lr_scale", 1.0)
    norm = [p for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters() if p.requires_grad]
    other = [p for p in model.parameters() if p.requires_grad and all(p is not q for q in norm)]
    # BatchNorm's betas learn at norm_lr_scale x the rate with the decay per step of the rest
    # (airbench's bias_scaler; optimizers.cpp's ranges).
    groups = [{"params": other, "weight_decay": wd, "scale": 1.0},
              {"params": norm, "weight_decay": wd / scale, "scale": scale}]
    opt = torch.optim.SGD(groups, lr=lr, momentum=o["momentum"], nesterov=o.get("nesterov", False),
                          foreach=True)
    la = tc.get("lookahead")
    params = [p for p in model.parameters() if p.requires_grad]
    slow = None
    batch, epochs, smoothing = tc["batch_size"], tc["epochs"], tc.get("label_smoothing", 0.0)
    steps_per_epoch = math.ceil(len(x) / batch)
    total_steps = steps_per_epoch * epochs
    print(f"airbench_torch: torch {torch.__version__}, {threads} threads, "
          f"{'channels-last' if fmt is torch.channels_last else 'NCHW'}, "
          f"{'bf16' if bf16 else 'fp32'}, {len(x)} train / "
          f"{len(tx)} test, batch {batch}, {steps_per_epoch} steps per epoch, {epochs} epochs", flush=True)
    start, training, step = time.perf_counter(), 0.0, 0
    gen = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(len(x), generator=gen)
        seen = correct = 0
        for b in range(0, len(x), batch):
            idx = order[b:b + batch]
            dy = torch.randint(-pad, pad + 1, (len(idx),), generator=gen)
            dx = torch.randint(-pad, pad + 1, (len(idx),), generator=gen)
            flip = torch.rand(len(idx), generator=gen) < 0.5
            inputs = batch_views(padded, idx, pad, dy, dx, flip).contiguous(memory_format=fmt)
            for g in opt.param_groups:
                g["lr"] = onecycle(step, lr, tc["lr_schedule"]["onecycle"], total_steps) * g["scale"]
            with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                out = model(inputs)
                loss = F.cross_entropy(out.float(), labels[idx], label_smoothing=smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            correct += int((out.argmax(1) == labels[idx]).sum())
            seen += len(idx)
            # Lookahead, as trainer/optim/lookahead.cpp (Note [lookahead]).
            if la and step > la["start_epoch"] * steps_per_epoch and step % la["every_steps"] == 0:
                with torch.no_grad():
                    if slow is None:
                        slow = [p.detach().clone() for p in params]
                    else:
                        rho = la["decay"] * min(step / total_steps, 1.0) ** la["ramp_power"]
                        for s, p in zip(slow, params):
                            s.mul_(rho).add_(p, alpha=1 - rho)
                            p.copy_(s)
        if slow is not None:  # the end of an epoch: the network takes the slow weights
            with torch.no_grad():
                for s, p in zip(slow, params):
                    p.copy_(s)
        seconds = time.perf_counter() - t0
        training += seconds
        print(f"Epoch {epoch}/{epochs}: {seconds:.1f} s, {len(x) / seconds:.0f} img/s, "
              f"train accuracy {correct / seen:.4f}", flush=True)
        if epoch < eval_from:
            continue
        acc, test_loss = evaluate(model, padded_test, test_labels, fmt, bf16)
        print(f"Epoch test: epoch {epoch} - accuracy: {acc:.4f} - loss: {test_loss:.4f} - training "
              f"time {training:.1f} s - since start {time.perf_counter() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
