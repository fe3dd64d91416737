"""Reads a dptrain config (the YAML of configs/) into a plain layer list both peer benchmarks build from."""
import yaml


def load(path):
    cfg = yaml.safe_load(open(path))
    layers = []
    for entry in cfg["model"]["layers"]:
        (kind, opts), = entry.items()
        layers.append((kind, opts or {}))
    train = cfg.get("train", {})
    return {"name": cfg["name"], "input": cfg["model"]["input"], "layers": layers,
            "batch": train.get("batch_size", 32)}
