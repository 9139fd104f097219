"""tools/train_net.py drives fastreid's stock Baseline on CPU: train, checkpoint, resume, eval."""
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "tests" / "configs" / "baseline_r18_tiny.yml"


def train_net(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(REPO / "tools" / "train_net.py"), *args],
                            capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def trained(market_root, tmp_path_factory):
    """Two epochs of 20 iterations each, in-process, recording the loss of every step."""
    from fastreid.engine import HookBase
    from fastreid.engine.defaults import default_argument_parser

    from fastreid_ext.engine import build_trainer_class, setup

    class LossRecorder(HookBase):
        def __init__(self):
            self.losses = []

        def after_step(self):
            self.losses.append(self.trainer.storage.history("total_loss").latest())

    out = tmp_path_factory.mktemp("baseline")
    args = default_argument_parser().parse_args(
        ["--config-file", str(CONFIG), "DATASETS.ROOT", str(market_root), "OUTPUT_DIR", str(out),
         "SOLVER.MAX_EPOCH", "2"])
    cfg = setup(args)
    trainer = build_trainer_class(cfg)(cfg)
    recorder = LossRecorder()
    trainer.register_hooks([recorder])
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    return out, recorder.losses, results


def test_baseline_trains_twenty_iterations_per_epoch_on_cpu_and_its_loss_falls(trained):
    _, losses, results = trained
    assert len(losses) == 40
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    assert results["Rank-1"] > 50  # evaluation ran through fastreid's EvalHook


def test_training_writes_checkpoints_and_metrics(trained):
    out, _, _ = trained
    assert (out / "model_final.pth").is_file()
    assert (out / "last_checkpoint").read_text().strip() == "model_final.pth"
    ckpt = torch.load(out / "model_final.pth", map_location="cpu")
    assert {"model", "optimizer", "epoch"} <= set(ckpt) and ckpt["epoch"] == 1
    lines = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    evaluated_at = [line["iteration"] for line in lines if "Rank-1" in line]
    assert evaluated_at == [19, 39]  # both epochs' evaluations, the final one included


def test_resume_continues_from_the_checkpoint_and_eval_only_loads_it(trained, market_root, tmp_path):
    out, _, _ = trained
    resumed = train_net("--config-file", str(CONFIG), "--resume", "DATASETS.ROOT", str(market_root),
                        "OUTPUT_DIR", str(out), "SOLVER.MAX_EPOCH", "3")
    log = resumed.stdout + resumed.stderr
    assert "Resuming from" in log or "Loading checkpoint from" in log
    assert "Starting training from epoch 2" in log
    assert torch.load(out / "model_final.pth", map_location="cpu")["epoch"] == 2

    evaluated = train_net("--config-file", str(CONFIG), "--eval-only", "DATASETS.ROOT", str(market_root),
                          "OUTPUT_DIR", str(tmp_path), "MODEL.WEIGHTS", str(out / "model_final.pth"))
    log = evaluated.stdout + evaluated.stderr
    assert "Evaluation results in csv format" in log and "Market1501" in log
