"""tools/train_net.py under torchrun (env:// rendezvous) and under fastreid's --num-gpus flags,
two CPU processes each."""
import os
import subprocess
import sys

import pytest
from fastreid.engine.launch import _find_free_port

from conftest_helpers import REPO, TINY

TRAIN_NET = str(REPO / "tools" / "train_net.py")


def tiny_run(root, out):
    return ["--config-file", str(REPO / "configs" / "SynVI" / "miot.yml"), "DATASETS.ROOT", str(root),
            "OUTPUT_DIR", str(out), *TINY, "SOLVER.MAX_EPOCH", "1", "SEED", "0"]


def run(command, timeout=300):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def assert_trained_on_two_processes(result, out):
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    log = (out / "log.txt").read_text()
    assert "Rank of current process: 0. World size: 2" in log
    assert (out / "model_final.pth").is_file() and (out / "metrics.json").is_file()


@pytest.mark.parametrize("launcher", ["torchrun", "fastreid"])
def test_train_net_trains_on_two_processes(launcher, synvi_sysu, tmp_path):
    out = tmp_path / launcher
    if launcher == "torchrun":
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                   "--master-port", str(_find_free_port()), TRAIN_NET, *tiny_run(synvi_sysu, out)]
    else:
        command = [sys.executable, TRAIN_NET, "--num-gpus", "2", "--dist-url", "auto", *tiny_run(synvi_sysu, out)]
    assert_trained_on_two_processes(run(command), out)


def test_torchrun_with_num_gpus_is_refused_with_the_reason(synvi_sysu, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "1",
               "--master-port", str(_find_free_port()), TRAIN_NET, "--num-gpus", "2", *tiny_run(synvi_sysu, tmp_path)]
    result = run(command)
    assert result.returncode != 0
    assert "under torchrun each process is one rank: leave --num-gpus and --num-machines at 1" in result.stderr


def test_the_process_group_timeout_comes_from_the_command_line(monkeypatch):
    import datetime

    import torch.distributed as dist

    from fastreid_ext import compat

    seen = {}

    def init_process_group(**kwargs):
        seen.update(kwargs)
        raise RuntimeError("stop here")

    monkeypatch.setattr(dist, "init_process_group", init_process_group)
    with pytest.raises(RuntimeError, match="stop here"):
        compat.distributed_worker(0, print, 2, 2, 0, "tcp://127.0.0.1:1", (), 7.5)
    assert seen["timeout"] == datetime.timedelta(minutes=7.5)
    from fastreid.engine import default_argument_parser

    from fastreid_ext.engine import add_launch_arguments

    assert add_launch_arguments(default_argument_parser()).parse_args([]).dist_timeout == 30
    assert add_launch_arguments(default_argument_parser()).parse_args(["--dist-timeout", "90"]).dist_timeout == 90
