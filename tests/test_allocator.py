"""KEEP_FREED_MEMORY: glibc's malloc serves large tensors from memory the process freed, instead of
fresh mappings the kernel fills page by page, and setup() applies it only when the key is on."""
import platform
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# ten forward/backward steps of a small conv net after two that warm the heap up; prints their minor
# page faults (each fresh mapping of an activation or gradient is filled by the kernel page by page)
STEP_FAULTS = """
import resource, sys, torch
from fastreid_ext.utils import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
torch.manual_seed(0)
net = torch.nn.Sequential(torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 32, 3, padding=1))
x = torch.randn(32, 3, 128, 64)  # 34 MB activations: above glibc's largest dynamic mmap threshold
def step():
    net.zero_grad()
    net(x).square().mean().backward()
step()
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def step_faults(policy: str) -> int:
    result = subprocess.run([sys.executable, "-c", STEP_FAULTS, policy], capture_output=True, text=True,
                            timeout=300, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    return int(result.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's; elsewhere keep_freed_memory() changes nothing")
def test_kept_memory_spares_most_page_faults_of_training_steps():
    default, kept = step_faults("default"), step_faults("keep")
    assert default > 30000  # 34 MB activations and gradients, mapped afresh at every step
    assert kept * 5 < default, (kept, default)  # the heap serves them once it has grown


def test_setup_applies_the_policy_only_when_the_key_is_on(market_root, tmp_path, monkeypatch):
    from fastreid.engine.defaults import default_argument_parser

    from fastreid_ext.engine import defaults

    calls = []
    monkeypatch.setattr(defaults, "keep_freed_memory", lambda: calls.append("kept") or True)
    for value in ("False", "True"):
        args = default_argument_parser().parse_args(
            ["--config-file", str(REPO / "tests" / "configs" / "baseline_r18_tiny.yml"), "DATASETS.ROOT",
             str(market_root), "OUTPUT_DIR", str(tmp_path / value), "KEEP_FREED_MEMORY", value])
        defaults.setup(args)
    assert calls == ["kept"]
