"""The supervised cross-modality trainer: fastreid's Baseline on true identities, both modalities
in every batch, evaluated with the cross-modality protocol (periodic and --eval-only)."""
import subprocess
import sys

import pytest
import torch
from fastreid.engine import HookBase
from fastreid.engine.defaults import default_argument_parser

from conftest_helpers import REPO
from fastreid_ext.engine import build_trainer_class, setup

CONFIG = REPO / "configs" / "SynVI" / "supervised.yml"


class StepRecorder(HookBase):
    def __init__(self):
        self.losses, self.batches = [], []

    def after_step(self):
        self.losses.append(self.trainer.storage.history("total_loss").latest())


@pytest.fixture(scope="module")
def supervised_run(synvi_sysu, tmp_path_factory):
    out = tmp_path_factory.mktemp("supervised")
    args = default_argument_parser().parse_args(
        ["--config-file", str(CONFIG), "DATASETS.ROOT", str(synvi_sysu), "OUTPUT_DIR", str(out),
         "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4", "SOLVER.MAX_EPOCH", "4",
         "SOLVER.STEPS", "[100]", "TEST.EVAL_PERIOD", "4", "TEST.CROSS_MODALITY.NUM_TRIALS", "2", "SEED", "0"])
    cfg = setup(args)
    trainer = build_trainer_class(cfg)(cfg)
    recorder = StepRecorder()
    trainer.register_hooks([recorder])
    trainer.model.register_forward_pre_hook(
        lambda module, inputs: recorder.batches.append(inputs[0]) if module.training else None)
    trainer.resume_or_load(resume=False)
    results = trainer.train()
    return trainer, recorder, results, out


def test_batches_hold_the_same_true_identities_in_both_modalities(supervised_run):
    trainer, recorder, _, _ = supervised_run
    train_set = trainer.data_loader.dataset
    assert train_set.num_classes == len({s.true_pid for s in train_set.samples}) == trainer.cfg.MODEL.HEADS.NUM_CLASSES
    for batch in recorder.batches:
        modalities, targets, index = batch["modalities"], batch["targets"], batch["index"]
        assert torch.equal(modalities, torch.tensor([0] * 8 + [1] * 8))
        true_ids = [train_set.samples[i].true_pid for i in index.tolist()]
        assert [train_set.labels[i] for i in index.tolist()] == targets.tolist()
        assert len(set(true_ids[:8])) == 2 and set(true_ids[:8]) == set(true_ids[8:])  # P ids, in both


def test_the_supervised_loss_falls(supervised_run):
    _, recorder, _, _ = supervised_run
    losses = recorder.losses
    assert len(losses) >= 20
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.8 * first, (first, last)


def test_periodic_and_eval_only_evaluation_use_the_cross_modality_protocol(supervised_run, synvi_sysu, tmp_path):
    _, _, results, out = supervised_run
    assert {"Rank-1", "mAP", "mINP", "Rank-1_std"} <= set(results)  # the cross-modality evaluator's keys
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "train_net.py"), "--config-file", str(CONFIG), "--eval-only",
         "DATASETS.ROOT", str(synvi_sysu), "OUTPUT_DIR", str(tmp_path), "MODEL.WEIGHTS", str(out / "model_final.pth"),
         "TEST.CROSS_MODALITY.NUM_TRIALS", "2"], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    assert "mINP" in log and "Rank-1_std" in log and f"{results['Rank-1']:.2f}" in log
