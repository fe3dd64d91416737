"""Reads a dptrain run's TensorBoard logs with TensorBoard's own EventAccumulator (tests/sharing).

  read_events.py RUN_DIR  ->  JSON on stdout:
  {"train": {"scalars": {tag: [[step, value], ...]}, "tensors": {tag: [[step, text], ...]},
             "files": N}, "validation": {...}}
Every event is kept (size_guidance 0), so a step written twice shows up twice.
"""
import json
import os
import sys

from tensorboard.backend.event_processing import event_accumulator as ea


def read_run(path):
    # purge_orphaned_data=False: report what the files hold, without TensorBoard's clean-up of
    # steps that a restarted writer wrote again.
    acc = ea.EventAccumulator(path, size_guidance={ea.SCALARS: 0, ea.TENSORS: 0},
                              purge_orphaned_data=False)
    acc.Reload()
    tags = acc.Tags()
    return {
        "scalars": {t: [[e.step, e.value] for e in acc.Scalars(t)] for t in tags[ea.SCALARS]},
        "tensors": {t: [[e.step, e.tensor_proto.string_val[0].decode()] for e in acc.Tensors(t)]
                    for t in tags[ea.TENSORS]},
        "files": len([f for f in os.listdir(path) if "tfevents" in f]),
    }


root = os.path.join(sys.argv[1], "tensorboard")
print(json.dumps({run: read_run(os.path.join(root, run)) for run in sorted(os.listdir(root))}))
