"""The benchmarks' readers of finished runs: the numbers in their tables come from these."""
import importlib
import json
import os
import subprocess

import numpy as np
import pytest

from conftest_helpers import REPO


@pytest.fixture
def benchmarks(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    return importlib.import_module("runs"), importlib.import_module("pretrained_regime")


TABLE = """| Dataset   | Rank-1   | Rank-5   | mAP   | mINP   |
|:----------|:---------|:---------|:------|:-------|
| SYSUMM01  | {r1}    | 90.00    | {mAP} | {mINP}  |
"""


def test_final_scores_are_the_last_table_of_the_log(benchmarks, tmp_path):
    runs, _ = benchmarks
    log = tmp_path / "log.txt"
    log.write_text("start\n" + TABLE.format(r1="10.00", mAP="11.00", mINP="12.00") + "training on\n"
                   + TABLE.format(r1="61.06", mAP="54.40", mINP="37.97") + "saving checkpoint\n")
    assert runs.final_scores(str(log), ("Rank-1", "mAP", "mINP")) == [61.06, 54.40, 37.97]


def test_diagnostics_are_read_per_epoch_in_order_and_missing_keys_are_nan(benchmarks, tmp_path):
    runs, regime = benchmarks
    records = [{"clusters_visible": 9, "identity_alignment": 0.5, "iteration": 0},
               {"total_loss": 3.0, "iteration": 19},
               {"clusters_visible": 8, "identity_alignment": 0.6, "matching_accuracy": 0.25, "iteration": 20},
               {"total_loss": 2.0, "iteration": 39}]
    (tmp_path / "metrics.json").write_text("\n".join(json.dumps(r) for r in records) + "\n")
    assert [r["clusters_visible"] for r in runs.diagnostics_per_epoch(str(tmp_path))] == [9, 8]
    assert runs.diagnostics_at(str(tmp_path), ("identity_alignment", "purity_visible")) == \
        pytest.approx([0.6, np.nan], nan_ok=True)
    assert runs.diagnostics_at(str(tmp_path), ("clusters_visible",), epoch=0) == [9]
    per_epoch = regime.per_epoch([str(tmp_path)], "matching_accuracy")
    assert np.isnan(per_epoch[0]) and per_epoch[1] == 0.25


def test_means_over_runs_ignore_runs_without_the_value(benchmarks):
    _, regime = benchmarks
    mean = regime.mean_over_runs([[1.0, np.nan, np.nan], [3.0, 4.0, np.nan]])
    assert mean[:2].tolist() == [2.0, 4.0] and np.isnan(mean[2])


def test_an_unfinished_run_is_started_afresh_and_a_finished_one_is_kept(benchmarks, tmp_path, monkeypatch):
    runs, _ = benchmarks
    calls = []

    monkeypatch.setattr(runs.subprocess, "run", fake_train_net(calls))
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.json").write_text('{"clusters_visible": 1}\n')  # left by an interrupted run
    runs.train_once("SynVI/miot.yml", str(out))
    assert sorted(os.listdir(out)) == ["config.yaml", "log.txt", "model_final.pth"]
    assert (out / "log.txt").read_text() == "new\n"
    runs.train_once("SynVI/miot.yml", str(out))
    assert len(calls) == 1


def test_a_finished_run_of_another_config_is_refused_not_reused(benchmarks, tmp_path, monkeypatch):
    runs, _ = benchmarks
    calls = []
    monkeypatch.setattr(runs.subprocess, "run", fake_train_net(calls))
    out = tmp_path / "run"
    runs.train_once("SynVI/miot.yml", str(out), ["SOLVER.MAX_EPOCH", "3", "SOLVER.STEPS", "[2]"])
    with pytest.raises(RuntimeError, match=r"run holds a run of another config \(SOLVER.MAX_EPOCH: 3 -> \d+; "
                                           r"SOLVER.STEPS: \[2\] -> \[\d+\]\)"):
        runs.train_once("SynVI/miot.yml", str(out))  # the config's own schedule now
    assert len(calls) == 1 and (out / "model_final.pth").exists()  # nothing trained, nothing removed
    (out / "config.yaml").unlink()
    with pytest.raises(RuntimeError, match="config.yaml: missing"):
        runs.train_once("SynVI/miot.yml", str(out), ["SOLVER.MAX_EPOCH", "3", "SOLVER.STEPS", "[2]"])


def fake_train_net(calls):
    """A stand-in for tools/train_net.py that leaves what a finished run leaves, its config dump included."""
    from fastreid_ext.engine.defaults import setup_config

    def run(command, **kwargs):
        calls.append(command)
        at = command.index("--config-file")
        out = command[command.index("OUTPUT_DIR") + 1]
        os.makedirs(out, exist_ok=True)
        for name in ("log.txt", "model_final.pth", "model_0011.pth"):
            with open(os.path.join(out, name), "a") as f:
                f.write("new\n")
        with open(os.path.join(out, "config.yaml"), "w") as f:
            f.write(setup_config(command[at + 1], command[at + 2:]).dump())
        return subprocess.CompletedProcess(command, 0, "", "")
    return run
