"""PyTorch training throughput of a dptrain zoo config on random tensors (the peer of bench/compare_peers.sh).
usage: torch_bench.py CONFIG MODE   MODE: fp32 | fp32cl (channels-last) | bf16 (autocast) | ddp (gloo, 2 x 1 thread)
       | compile | compilecl (fp32, torch.compile's default Inductor backend; its compile time is
       spent in the untimed warm-up steps) | cuda-fp32 | cuda-tf32 | cuda-bf16 (one GPU, channels-last; the GPU bundle's peer)"""
import os, sys, time
import torch
import torch.nn as nn
import zoo

ACT = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}


def build(spec):
    h, w, c = spec["input"] if len(spec["input"]) == 3 else (1, 1, spec["input"][0])
    mods, flat = [], None
    for kind, o in spec["layers"]:
        if kind == "conv2d":
            k = o["kernel"]
            mods.append(nn.Conv2d(c, o["filters"], k, stride=o.get("strides", 1), padding=o.get("padding", "valid")))
            c = o["filters"]
            if o.get("padding", "valid") == "valid":
                h, w = h - k + 1, w - k + 1
            if o.get("activation", "linear") in ACT:
                mods.append(ACT[o["activation"]]())
        elif kind in ("max_pool", "avg_pool"):
            p = o.get("pool", 2)
            mods.append((nn.MaxPool2d if kind == "max_pool" else nn.AvgPool2d)(p, ceil_mode=o.get("padding") == "same"))
            h, w = (h + p - 1) // p if o.get("padding") == "same" else h // p, (w + p - 1) // p if o.get("padding") == "same" else w // p
        elif kind == "batch_norm":
            mods.append(nn.BatchNorm2d(c, eps=1e-3, momentum=0.01) if flat is None else nn.BatchNorm1d(flat, eps=1e-3, momentum=0.01))
        elif kind == "dropout":
            mods.append(nn.Dropout(o.get("rate", 0.5)))
        elif kind == "flatten":
            mods.append(nn.Flatten())
            flat = h * w * c
        elif kind == "dense":
            mods.append(nn.Linear(flat, o["units"]))
            flat = o["units"]
            if o.get("activation", "linear") in ACT:
                mods.append(ACT[o["activation"]]())
        else:
            raise SystemExit(f"torch_bench: layer {kind} not mapped")
    return nn.Sequential(*mods), spec["input"]


def run(spec, mode, batch, steps=40, warmup=8):
    model, shape = build(spec)
    x = torch.rand(batch, shape[-1], *shape[:2]) if len(shape) == 3 else torch.rand(batch, *shape)
    y = torch.randint(0, 10, (batch,))
    gpu = mode.startswith("cuda")
    if gpu:
        # fp32 as dptrain's: no TF32 unless asked for; dptrain's GPU path is NHWC too.
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = mode == "cuda-tf32"
        model, x, y = model.cuda(), x.cuda(), y.cuda()
    if mode in ("fp32cl", "compilecl") or (gpu and len(shape) == 3):
        model = model.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    if mode == "ddp":
        model = nn.parallel.DistributedDataParallel(model)
    if mode.startswith("compile"):
        model = torch.compile(model)
    loss_fn = nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for i in range(warmup + steps):
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cuda" if gpu else "cpu", dtype=torch.bfloat16,
                            enabled=mode in ("bf16", "cuda-bf16")):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        if gpu and i + 1 in (warmup, warmup + steps):
            torch.cuda.synchronize()  # time the GPU's work, not the launches
        if i + 1 == warmup:
            t0 = time.perf_counter()
    return steps * batch / (time.perf_counter() - t0)


if __name__ == "__main__":
    spec, mode = zoo.load(sys.argv[1]), sys.argv[2]
    if mode == "ddp":
        import torch.distributed as dist
        dist.init_process_group("gloo")
        torch.set_num_threads(1)
        ips = run(spec, mode, spec["batch"] // dist.get_world_size())
        t = torch.tensor([ips])
        dist.all_reduce(t)
        if dist.get_rank() == 0:
            print(f"{t.item():.0f}")
    else:
        torch.set_num_threads(int(os.environ.get("THREADS", os.cpu_count())))
        print(f"{run(spec, mode, spec['batch']):.0f}")
