"""Shared by the SynVI benchmarks: run tools/train_net.py once per output folder (a finished run is
reused only if it was trained with the config it would be trained with now), and read back what a run
logged (the final evaluation table, the pseudo-label diagnostics of every epoch)."""
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

import numpy as np
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _flat(node: dict, prefix: str = "") -> Dict[str, object]:
    """``{"A": {"B": 1}}`` -> ``{"A.B": 1}``; tuples as lists, as a dumped config reads back."""
    flat = {}
    for key, value in node.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = list(value) if isinstance(value, tuple) else value
    return flat


def config_changes(run: str, config: str, overrides: Sequence[str] = (), eval_only: bool = False) -> List[str]:
    """``"KEY: then -> now"`` for every key whose value in the config the run in ``run`` was trained
    with (its config.yaml) differs from what ``config`` (relative to configs/) and ``overrides`` give
    now. OUTPUT_DIR (a folder moved aside) and keys only one side defines (a key added later) are not
    compared. A run without config.yaml reads as changed: nothing says what it was trained with."""
    saved = os.path.join(run, "config.yaml")
    if not os.path.exists(saved):
        return [f"{saved}: missing"]
    import fastreid_ext  # noqa: F401  (makes fastreid importable on this stack)
    from fastreid_ext.engine.defaults import setup_config

    now = _flat(yaml.safe_load(setup_config(os.path.join(REPO, "configs", config), list(overrides),
                                            eval_only=eval_only).dump()))
    with open(saved) as f:
        then = _flat(yaml.safe_load(f))
    return [f"{key}: {then[key]} -> {now[key]}" for key in sorted(now)
            if key != "OUTPUT_DIR" and key in then and then[key] != now[key]]


def train_once(config: str, out: str, overrides: Sequence[str] = (), eval_only: bool = False) -> str:
    """Run ``tools/train_net.py`` with ``config`` (relative to configs/) into ``out`` unless a
    finished run is there (model_final.pth; for ``eval_only``, log.txt); an unfinished one is
    removed first (fastreid appends to log.txt and metrics.json). A finished run trained with
    another config is an error, not a result (:func:`config_changes`). Keeps model_final.pth only
    (each checkpoint holds model + optimizer state). Returns the run's log.txt."""
    log = os.path.join(out, "log.txt")
    done = os.path.join(out, "log.txt" if eval_only else "model_final.pth")
    if os.path.exists(done):
        changes = config_changes(out, config, overrides, eval_only)
        if changes:
            raise RuntimeError(f"{out} holds a run of another config ({'; '.join(changes)}); "
                               f"move it aside, or write to another folder")
    else:
        if os.path.isdir(out):
            shutil.rmtree(out)
        command = [sys.executable, os.path.join(REPO, "tools", "train_net.py"),
                   "--config-file", os.path.join(REPO, "configs", config)]
        command += ["--eval-only"] if eval_only else []
        result = subprocess.run(command + list(overrides) + ["OUTPUT_DIR", out], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{config} {' '.join(overrides)} failed (exit {result.returncode}); "
                               f"its last output:\n{result.stderr[-3000:]}")
        for entry in os.listdir(out):
            if entry.endswith(".pth") and entry != "model_final.pth":
                os.remove(os.path.join(out, entry))
    return log


def best_of(fn: Callable, repeats: int) -> Tuple[float, object]:
    """(fastest of ``repeats`` calls of ``fn`` in seconds, the last call's result)."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def final_scores(log_path: str, keys: Sequence[str]) -> List[float]:
    """The last evaluation table that fastreid printed to the run's log."""
    lines = open(log_path).read().splitlines()
    header_at = max(i for i, line in enumerate(lines) if line.startswith("| Dataset"))
    header = [h.strip() for h in lines[header_at].strip("|").split("|")]
    values = [v.strip() for v in lines[header_at + 2].strip("|").split("|")]
    row = dict(zip(header, values))
    return [float(row[k]) for k in keys]


def diagnostics_per_epoch(run_dir: str) -> List[Dict[str, float]]:
    """The pseudo-label diagnostics the loop logged at the start of each epoch (metrics.json)."""
    with open(os.path.join(run_dir, "metrics.json")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return [r for r in records if "clusters_visible" in r]


def diagnostics_at(run_dir: str, keys: Sequence[str], epoch: int = -1) -> List[float]:
    """The pseudo-label diagnostics of one epoch (default: the last; NaN for a key the run did
    not log). Epoch 0's are those of the starting model."""
    record = diagnostics_per_epoch(run_dir)[epoch]
    return [float(record.get(k, np.nan)) for k in keys]
