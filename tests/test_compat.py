"""Each compat fix: the fastreid code path it repairs works with it, and fails without it.

The failing half runs in a subprocess with the fix turned off through
``FASTREID_EXT_COMPAT_SKIP``; the working half runs here, where every fix is applied.
"""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from fastreid_ext import compat
from fastreid_ext.utils import cuda_usable


def run_without(fix: str, probe: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, FASTREID_EXT_COMPAT_SKIP=fix)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return subprocess.run([sys.executable, "-c", textwrap.dedent(probe)], env=env,
                          capture_output=True, text=True, timeout=120)


def assert_fails(fix: str, probe: str, expected: str) -> None:
    result = run_without(fix, probe)
    assert result.returncode != 0, f"{fix}: probe passed without the fix\n{result.stdout}"
    assert expected in result.stderr + result.stdout, result.stderr[-2000:]


def test_every_fix_is_applied_once():
    assert compat.apply() == compat.known_fixes()
    assert compat.apply() == compat.known_fixes()  # idempotent


def test_unknown_skip_name_is_refused():
    result = run_without("no_such_fix", "import fastreid_ext")
    assert result.returncode != 0 and "unknown fixes ['no_such_fix']" in result.stderr


def test_torch_six_makes_fastreid_data_importable():
    import fastreid.data.build as build

    assert build.string_classes == (str, bytes)
    assert_fails("torch_six", "import fastreid_ext", "No module named 'torch._six'")


def test_collections_abc_makes_fastreid_evaluation_importable():
    from fastreid.evaluation import testing

    assert testing.Mapping is __import__("collections.abc").abc.Mapping
    assert_fails("collections_abc", "import fastreid_ext",
                 "cannot import name 'Mapping' from 'collections'")


CUHK03_EVAL = """
    from fastreid.evaluation.rank import eval_cuhk03
    d = np.random.default_rng(0).random((4, 6)).astype(np.float32)
    q = np.array([0, 1, 2, 3]); g = np.array([0, 1, 2, 3, 0, 1])
    cmc, mAP = eval_cuhk03(d, q, g, np.zeros(4, int), np.ones(6, int), 5)
    assert 0 < mAP <= 1
"""


def test_numpy_bool_keeps_fastreid_cuhk03_evaluation_working():
    import fastreid.evaluation.rank  # noqa: F401
    exec("import numpy as np\n" + textwrap.dedent(CUHK03_EVAL), {})
    # numpy 1.24-1.26 have no np.bool: simulate them by removing it before the fix runs
    assert_fails("numpy_bool", "import numpy as np\ndel np.bool\nimport fastreid_ext\n" +
                 textwrap.dedent(CUHK03_EVAL), "has no attribute 'bool'")


LOADER = """
    import torch
    from fastreid.data.data_utils import DataLoaderX
    data = [{"images": torch.full((3, 4, 4), float(i))} for i in range(6)]
    loader = DataLoaderX(0, dataset=data, batch_size=2, num_workers=0)
    batches = list(loader)
"""


@pytest.mark.skipif(cuda_usable(), reason="shows the CPU-only failure")
def test_dataloaderx_iterates_on_cpu_without_cuda():
    scope = {}
    exec(textwrap.dedent(LOADER), scope)
    batches = scope["batches"]
    assert [b["images"][:, 0, 0, 0].tolist() for b in batches] == [[0, 1], [2, 3], [4, 5]]
    assert batches[0]["images"].device.type == "cpu"
    assert_fails("dataloader_cuda", "import fastreid_ext\n" + textwrap.dedent(LOADER), "RuntimeError")


OPTIMIZER_STEP = """
    import torch
    from fastreid.config import get_cfg
    from fastreid.solver import build_optimizer
    cfg = get_cfg(); cfg.SOLVER.OPT = "SGD"; cfg.SOLVER.BASE_LR = 0.1
    model = torch.nn.Linear(3, 2)
    optimizer, _ = build_optimizer(cfg, model)
    before = model.weight.detach().clone()
    for _ in range(2):
        optimizer.zero_grad()
        model(torch.ones(4, 3)).sum().backward()
        optimizer.step()
    assert not torch.equal(before, model.weight), "the optimizer step changed nothing"
    assert torch.allclose(model.weight.grad, torch.full((2, 3), 4.0)), "grads accumulate across steps"
"""


def test_fastreid_optimizer_updates_the_model_and_zeroes_grads():
    exec(textwrap.dedent(OPTIMIZER_STEP), {})
    assert_fails("contiguous_params_zero_grad", "import fastreid_ext\n" + textwrap.dedent(OPTIMIZER_STEP),
                 "the optimizer step changed nothing")


AMP_STEP = """
    import torch
    from fastreid.engine.train_loop import AMPTrainer
    model = torch.nn.Linear(2, 1)
    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__(); self.lin = model
        def forward(self, x):
            return {"loss": self.lin(x).pow(2).mean()}
    net = Wrapped().train()
    data = [torch.ones(4, 2)] * 3
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    trainer = AMPTrainer(net, data, opt, None)
    trainer._data_loader_iter = iter(data)
    from fastreid.utils.events import EventStorage
    with EventStorage(0):
        trainer.iter = 0
        before = net.lin.weight.detach().clone()
        trainer.run_step()
    assert not torch.equal(before, net.lin.weight)
"""


@pytest.mark.skipif(cuda_usable(), reason="shows the CPU-only failure")
def test_amp_trainer_steps_on_cpu_in_float32():
    exec(textwrap.dedent(AMP_STEP), {})
    assert_fails("amp", "import fastreid_ext\n" + textwrap.dedent(AMP_STEP), "CUDA is required for AMP")


JACCARD = """
    import torch
    from fastreid.utils.compute_dist import build_dist
    f = torch.nn.functional.normalize(torch.randn(30, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    dist = build_dist(f[:10], f[10:], metric="jaccard", k1=5, k2=2)
"""


@pytest.mark.skipif(cuda_usable(), reason="shows the CPU-only failure")
def test_rerank_jaccard_distance_runs_without_gpu():
    scope = {}
    exec(textwrap.dedent(JACCARD), scope)
    dist = scope["dist"]
    assert dist.shape == (10, 20) and np.all(np.isfinite(dist)) and dist.min() >= 0
    assert_fails("jaccard_device", "import fastreid_ext\n" + textwrap.dedent(JACCARD), "Error")


def test_checkpoints_with_numpy_arrays_load(tmp_path):
    from fastreid.utils.checkpoint import Checkpointer

    path = tmp_path / "np.pth"
    state = {"weight": np.arange(4, dtype=np.float32).reshape(2, 2), "bias": np.ones(2, np.float64)}
    torch.save({"model": state, "epoch": np.int64(3)}, path)
    model = torch.nn.Linear(2, 2)
    extra = Checkpointer(model).load(str(path))
    assert model.weight.tolist() == [[0, 1], [2, 3]] and model.bias.tolist() == [1, 1]
    assert extra["epoch"] == 3
    probe = f"""
        import fastreid_ext, torch
        from fastreid.utils.checkpoint import Checkpointer
        Checkpointer(torch.nn.Linear(2, 2)).load({str(path)!r})
    """
    assert_fails("torch_load_numpy", probe, "Weights only load failed")


EVALUATOR = """
    from fastreid.config import get_cfg
    from fastreid.evaluation import ReidEvaluator
    ReidEvaluator(get_cfg(), num_query=1)._compile_dependencies()
    print("compiled nothing")
"""


def test_reid_evaluator_never_compiles_at_run_time():
    scope = {}
    exec(textwrap.dedent(EVALUATOR), scope)  # returns; no make, no sys.exit
    assert_fails("rank_cython_build", "import fastreid_ext\n" + textwrap.dedent(EVALUATOR),
                 "Making cython reid evaluation module failed")


def test_to_tensor_reads_16_bit_thermal_images():
    from fastreid.data.transforms import ToTensor

    pixels = np.array([[0, 1000], [30000, 7]], dtype=np.uint16)
    tensor = ToTensor()(Image.fromarray(pixels))
    assert tensor.shape == (1, 2, 2) and tensor.flatten().tolist() == [0, 1000, 30000, 7]
    rgb = np.random.default_rng(0).integers(0, 255, (3, 5, 3), dtype=np.uint8)
    tensor = ToTensor()(Image.fromarray(rgb))
    assert tensor.dtype == torch.float32 and torch.equal(tensor, torch.from_numpy(rgb).permute(2, 0, 1).float())
    probe = """
        import fastreid_ext, numpy as np
        from PIL import Image
        from fastreid.data.transforms import ToTensor
        ToTensor()(Image.fromarray(np.zeros((2, 2), np.uint16)))
    """
    assert_fails("to_tensor_numpy2", probe, "Unable to avoid copy")


LATE_SCALAR = """
    import json, os, tempfile
    from fastreid.utils.events import EventStorage, JSONWriter
    path = os.path.join(tempfile.mkdtemp(), "metrics.json")
    writer = JSONWriter(path)
    with EventStorage(0) as storage:
        storage.iter = 9
        storage.put_scalar("total_loss", 1.0)
        writer.write()                                   # the periodic write at the last iteration
        storage.put_scalars(**{"Rank-1": 42.0}, smoothing_hint=False)   # EvalHook, same iteration
        writer.write()                                   # the final write
    writer.close()
    lines = [json.loads(line) for line in open(path)]
    assert any(line.get("Rank-1") == 42.0 for line in lines), "final evaluation missing from metrics.json"
"""


def test_final_evaluation_reaches_metrics_json():
    exec(textwrap.dedent(LATE_SCALAR), {})
    assert_fails("writers_keep_late_scalars", "import fastreid_ext\n" + textwrap.dedent(LATE_SCALAR),
                 "final evaluation missing from metrics.json")


LAUNCH_TWO = """
import fastreid_ext
from fastreid.engine import launch

if __name__ == "__main__":
    launch(print, 2, dist_url="auto", args=("process ran",))   # two processes, no GPU
"""


@pytest.mark.skipif(cuda_usable(), reason="shows the CPU-only failure")
def test_launch_runs_several_cpu_processes_with_gloo(tmp_path):
    script = tmp_path / "launch_two.py"  # a file, as spawned processes re-import the entry script
    script.write_text(LAUNCH_TWO)
    results = {}
    for skip in ("", "distributed_any_device"):
        env = dict(os.environ, FASTREID_EXT_COMPAT_SKIP=skip)
        results[skip] = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                                       timeout=120)
    ok, broken = results[""], results["distributed_any_device"]
    assert ok.returncode == 0 and ok.stdout.count("process ran") == 2, ok.stderr[-2000:]
    assert broken.returncode != 0 and "cuda is not available" in broken.stderr


def test_distributed_worker_destroys_its_process_group_when_done():
    """A gloo process that exits with its process group alive may abort at interpreter exit
    ("terminate called without an active exception"); the worker tears the group down."""
    import torch.distributed as dist
    from fastreid.engine.launch import _find_free_port

    seen = []
    compat.distributed_worker(0, lambda: seen.append(dist.is_initialized()), 1, 1, 0,
                              f"tcp://127.0.0.1:{_find_free_port()}", ())
    assert seen == [True]
    assert not dist.is_initialized()


def test_registry_iteration_lists_registered_names_without_private_attributes():
    from fastreid.data.datasets import DATASET_REGISTRY

    from fastreid_ext.utils import registered_names

    assert "SYSUMM01" in DATASET_REGISTRY and "NoSuchSet" not in DATASET_REGISTRY
    names = registered_names(DATASET_REGISTRY)
    assert names == sorted(names) and {"SYSUMM01", "RegDB", "LLCM", "Market1501"} <= set(names)
    assert_fails("registry_iteration", """
        import fastreid_ext
        from fastreid.data.datasets import DATASET_REGISTRY
        from fastreid_ext.utils import registered_names
        registered_names(DATASET_REGISTRY)
    """, "'Registry' object is not iterable")


def test_metric_printer_survives_two_writes_at_one_iteration_before_any_iteration_time():
    probe = """
        import fastreid_ext
        from fastreid.utils.events import CommonMetricPrinter, EventStorage
        with EventStorage(0) as storage:
            storage.epoch = 0  # set by the trainer
            printer = CommonMetricPrinter(max_iter=10)
            storage.put_scalar("total_loss", 1.0)
            printer.write()
            printer.write()  # after the epoch's last step, then after the epoch: no "time" yet
        print("ok")
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(probe)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
    assert_fails("metric_printer_same_iteration", probe, "ZeroDivisionError")


def test_backbone_weights_from_a_fastreid_checkpoint_are_loaded_not_silently_skipped(tmp_path):
    probe = f"""
        import torch, fastreid_ext
        from fastreid.config import get_cfg
        from fastreid.modeling import build_model
        from fastreid.modeling.backbones import build_backbone
        cfg = get_cfg()
        cfg.MODEL.BACKBONE.DEPTH, cfg.MODEL.BACKBONE.FEAT_DIM, cfg.MODEL.DEVICE = "18x", 512, "cpu"
        cfg.MODEL.BACKBONE.PRETRAIN, cfg.MODEL.HEADS.NUM_CLASSES = False, 4
        trained = build_model(cfg)
        torch.save({{"model": trained.state_dict()}}, "{tmp_path}/model_final.pth")
        cfg.MODEL.BACKBONE.PRETRAIN, cfg.MODEL.BACKBONE.PRETRAIN_PATH = True, "{tmp_path}/model_final.pth"
        loaded = build_backbone(cfg)
        assert torch.equal(loaded.conv1.weight, trained.backbone.conv1.weight), "no weight was loaded"
        print("ok")
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(probe)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
    assert_fails("backbone_weights", probe, "no weight was loaded")


def triplet_worker(rank: int, world: int, init: str, out_dir: str) -> None:
    import torch.distributed as dist
    from fastreid.modeling.losses import triplet_loss as fastreids_own
    from fastreid.modeling.meta_arch import baseline

    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    embedding, targets = triplet_batch()
    mine = slice(rank * 4, rank * 4 + 4)  # one identity per process
    local = embedding[mine].clone().requires_grad_(True)
    loss = baseline.triplet_loss(local, targets[mine], 0.3, False, True)
    loss.backward()
    torch.save({"loss": loss.item(), "grad": local.grad, "fastreids_own": fastreids_own(
        embedding[mine], targets[mine], 0.3, False, True).item()}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def triplet_batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 16, generator=g), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def test_baselines_triplet_loss_is_that_of_the_global_batch_on_several_processes(tmp_path):
    import torch.multiprocessing as mp
    from fastreid.modeling.meta_arch import baseline

    embedding, targets = triplet_batch()
    embedding.requires_grad_(True)
    single = baseline.triplet_loss(embedding, targets, 0.3, False, True)  # one process: fastreid's own loss
    single.backward()
    mp.spawn(triplet_worker, args=(2, f"file://{tmp_path / 'rendezvous'}", str(tmp_path)), nprocs=2)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    assert single.item() > 0.1
    assert all(r["loss"] == pytest.approx(single.item(), rel=1e-6) for r in ranks)
    # without the fix each process mines its own identity only: no negative, and a loss of another batch
    assert all(r["fastreids_own"] != pytest.approx(single.item(), rel=1e-2) for r in ranks)
    # each process's embeddings get the gradient of every process's (identical) loss: W x one process's
    torch.testing.assert_close(torch.cat([r["grad"] for r in ranks]), 2 * embedding.grad, rtol=1e-5, atol=1e-6)
