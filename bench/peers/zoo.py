"""Reads a dptrain config (the YAML of configs/) into a plain layer list both peer benchmarks build from.
As a script, `zoo.py CONFIG.yaml OUT.json` writes that list as JSON, which load() reads without
PyYAML (the GPU bundle's peer runs in a vendor venv that may lack it)."""
import json
import sys


def load(path):
    if path.endswith(".json"):
        return json.load(open(path))
    import yaml
    cfg = yaml.safe_load(open(path))
    layers = []
    for entry in cfg["model"]["layers"]:
        (kind, opts), = entry.items()
        layers.append((kind, opts or {}))
    train = cfg.get("train", {})
    opt = train.get("optimizer", {})
    adam = opt.get("adam", {}) if isinstance(opt, dict) else {}
    return {"name": cfg["name"], "input": cfg["model"]["input"], "layers": layers,
            "batch": train.get("batch_size", 32),
            "dataset": cfg.get("data", {}).get("dataset"),
            "data_dir": cfg.get("data", {}).get("dir", f"data/{cfg.get('data', {}).get('dataset')}"),
            "validation_split": cfg.get("data", {}).get("validation_split", 0.0),
            "lr": (adam or {}).get("lr", 1e-3),
            # What keras_parity.py can reproduce: Adam (its options but lr at Keras' defaults),
            # a constant schedule, no label smoothing, no lookahead.
            "plain_adam": isinstance(opt, dict) and list(opt) == ["adam"]
                          and set(adam or {}) <= {"lr"}
                          and train.get("lr_schedule", "constant") == "constant"
                          and not train.get("label_smoothing") and not train.get("lookahead")}


if __name__ == "__main__":
    json.dump(load(sys.argv[1]), open(sys.argv[2], "w"))
