"""Two CPU processes (gloo) through fastreid's launch: one clustering per epoch broadcast to
every rank, identical memories, and evaluation equal to a single process's."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

PROBE = Path(__file__).resolve().parent / "distributed_probe.py"


def run_probe(*args, timeout=600):
    result = subprocess.run([sys.executable, str(PROBE), *map(str, args)], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


@pytest.fixture(scope="module")
def runs(synvi_sysu, tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed")
    run_probe("train", 1, synvi_sysu, out)
    run_probe("train", 2, synvi_sysu, out)
    load = lambda name: torch.load(out / name, weights_only=False)  # noqa: E731
    return out, load("train_world1_rank0.pt"), load("train_world2_rank0.pt"), load("train_world2_rank1.pt")


def test_every_rank_ends_with_the_same_labels_matches_memories_and_weights(runs):
    _, _, rank0, rank1 = runs
    assert rank0["world"] == rank1["world"] == 2
    for key in ("labels_visible", "labels_infrared", "infrared_to_visible", "memory_visible", "memory_infrared",
                "weight"):
        assert torch.equal(rank0[key], rank1[key]), key


def test_the_first_clustering_equals_the_single_process_one(runs):
    # epoch 0's labels depend only on the initial weights (same seed) and per-image features
    _, single, rank0, _ = runs
    for key in ("labels_visible", "labels_infrared", "infrared_to_visible"):
        assert torch.equal(single[key], rank0[key]), key


def test_distributed_evaluation_equals_single_process_evaluation(runs, synvi_sysu):
    out, _, _, _ = runs
    weights = out / "train_world1" / "model_final.pth"
    run_probe("eval", 1, synvi_sysu, out, weights)
    run_probe("eval", 2, synvi_sysu, out, weights)
    single = torch.load(out / "eval_world1_rank0.pt", weights_only=False)["results"]
    distributed = torch.load(out / "eval_world2_rank0.pt", weights_only=False)["results"]
    assert distributed == pytest.approx(single, abs=1e-6)


def test_a_non_finite_loss_on_one_rank_stops_every_rank_and_keeps_the_last_checkpoint(synvi_sysu, tmp_path):
    # without the agreement every rank makes before backward, rank 0 would wait for rank 1 in
    # DDP's all-reduce until the timeout below
    run_probe("fault", 2, synvi_sysu, tmp_path, timeout=240)
    errors = [torch.load(tmp_path / f"fault_world2_rank{rank}.pt", weights_only=False)["error"] for rank in (0, 1)]
    for error in errors:
        assert error is not None and error.startswith("rank 1: MIOT: non-finite pixel values in 8 images")
        assert "rank 0" not in error
    run = tmp_path / "fault_world2"
    last = (run / "last_checkpoint").read_text().strip()
    assert torch.load(run / last, map_location="cpu", weights_only=False)["epoch"] == 0  # epoch 0's, loadable
    assert not (run / "model_final.pth").exists()
