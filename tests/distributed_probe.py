"""Runs a tiny MIOT training (or evaluation) under fastreid's launch with N CPU processes
(gloo) and saves what each rank ended with; used by test_distributed.py.

    python tests/distributed_probe.py {train|eval|fault} NUM_PROCS DATA_ROOT OUT_DIR [WEIGHTS]
    python tests/distributed_probe.py equiv-{miot|supervised}-{sync|nosync} NUM_PROCS DATA_ROOT OUT_DIR

``fault`` trains two epochs and feeds the last rank NaN images at the second epoch's first
step; each rank saves the error it stopped with. ``equiv-*`` trains two epochs of MIOT (or the
supervised baseline) with the same global batch whatever NUM_PROCS, ``MODEL.SYNC_BN`` on or off,
and saves every iteration's losses, the weights and memories after the first epoch and the
second epoch's pseudo labels (on ``PROBE_DEVICE``, default cpu: with cuda, NCCL and a GPU per
process).
"""
import os
import sys

import fastreid_ext  # noqa: F401  (first)
import torch
from fastreid.engine import HookBase, launch
from fastreid.engine.defaults import default_argument_parser
from fastreid.utils import comm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # conftest_helpers


class EpochZeroRecorder(HookBase):
    """Every iteration's losses (rank 0's storage holds them averaged over the ranks) and, after
    the first epoch, the weights and the memories."""

    def __init__(self):
        self.losses, self.after_first_epoch = [], None

    def after_step(self):
        latest = self.trainer.storage.latest()
        self.losses.append({k: v for k, (v, it) in latest.items() if "loss" in k and it == self.trainer.iter})
        if self.trainer.iter == 0:
            from fastreid_ext.engine import unwrap

            self.first_grads = {n: p.grad.detach().clone() for n, p in unwrap(self.trainer.model).named_parameters()
                                if p.grad is not None}

    def after_epoch(self):
        if self.trainer.epoch == 0:
            from fastreid_ext.engine import unwrap

            model = unwrap(self.trainer.model)
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            for name in ("memory_visible", "memory_infrared"):
                if hasattr(model, name):
                    state[name] = getattr(model, name).features.cpu().clone()
            self.after_first_epoch = state


def equivalence(mode: str, root: str, out: str, tag: str) -> dict:
    from conftest_helpers import REPO, TINY
    from fastreid_ext.engine import build_trainer

    _, method, sync = mode.split("-")
    common = ["DATASETS.ROOT", root, "OUTPUT_DIR", os.path.join(out, tag), "SOLVER.MAX_EPOCH", "2", "SEED", "0",
              "MODEL.SYNC_BN", str(sync == "sync"), "MODEL.DEVICE", os.environ.get("PROBE_DEVICE", "cpu"),
              "TEST.EVAL_PERIOD", "100", "SOLVER.IMS_PER_BATCH", "16", "DATALOADER.NUM_INSTANCE", "4",
              "SOLVER.CHECKPOINT_PERIOD", "100",
              # SGD: Adam's first steps move every weight by about lr x sign(gradient), which turns the
              # float rounding of a different reduction order (1e-6 of the gradients) into 1e-3 of the loss
              "SOLVER.OPT", "SGD", "SOLVER.BASE_LR", "0.01", "SOLVER.MOMENTUM", "0.9"]
    # two iterations per epoch: this training is chaotic (a 1e-6 relative change of the initial weights
    # changes the third iteration's loss by 7 %), so float rounding grows past 1e-3 from the third on
    if method == "miot":
        config, opts = "miot.yml", TINY + common + ["MIOT.WARMUP_RATIO", "0.0", "MIOT.ITERS", "2"]
    else:  # fastreid: iterations per epoch = training images // batch (2 here)
        config, opts = "supervised.yml", common + ["SOLVER.IMS_PER_BATCH", "48"]
    recorder = EpochZeroRecorder()
    trainer = build_trainer(str(REPO / "configs" / "SynVI" / config), opts, hooks=[recorder])
    trainer.train()
    dump = {"world": comm.get_world_size(), "losses": recorder.losses, "first_grads": recorder.first_grads,
            "after_first_epoch": recorder.after_first_epoch, "iters_per_epoch": trainer.iters_per_epoch}
    loop = getattr(trainer, "loop", None)
    if loop is not None:
        dump.update(labels_visible=torch.as_tensor(loop.current.labels_visible),
                    labels_infrared=torch.as_tensor(loop.current.labels_infrared))
    return dump


def probe(mode: str, root: str, out: str, weights: str, tag: str) -> None:
    if mode.startswith("equiv"):
        torch.save(equivalence(mode, root, out, tag), os.path.join(out, f"{tag}_rank{comm.get_rank()}.pt"))
        return
    from conftest_helpers import REPO, TINY
    from fastreid_ext.engine import build_trainer_class, setup, unwrap

    epochs = "2" if mode == "fault" else "1"
    opts = ["DATASETS.ROOT", root, "OUTPUT_DIR", os.path.join(out, tag), *TINY, "SOLVER.MAX_EPOCH", epochs,
            "TEST.EVAL_PERIOD", "1", "SEED", "0", "MIOT.WARMUP_RATIO", "0.0"]
    argv = ["--config-file", str(REPO / "configs" / "SynVI" / "miot.yml")]
    if mode == "eval":
        argv.append("--eval-only")
        opts += ["MODEL.WEIGHTS", weights]
    args = default_argument_parser().parse_args(argv + opts)
    cfg = setup(args)
    trainer_class = build_trainer_class(cfg)
    dump = {"world": comm.get_world_size()}
    if mode == "eval":
        from fastreid_ext.engine import load_trained_model

        dump["results"] = trainer_class.test(cfg, load_trained_model(cfg))
    elif mode == "fault":
        trainer = trainer_class(cfg)
        trainer.resume_or_load(resume=False)
        if comm.get_rank() == comm.get_world_size() - 1:
            model = unwrap(trainer.model)

            def poison(module, args):
                if module.training and trainer.epoch == 1:
                    args[0]["images"] = torch.full_like(args[0]["images"], float("nan"))

            model.register_forward_pre_hook(poison)
        try:
            trainer.train()
            dump["error"] = None
        except FloatingPointError as err:
            dump["error"] = str(err)
    else:
        trainer = trainer_class(cfg)
        trainer.resume_or_load(resume=False)
        dump["results"] = trainer.train()
        model = unwrap(trainer.model)
        loop = next(h for h in trainer._hooks if type(h).__name__ == "MIOTLoopHook")
        dump.update(labels_visible=torch.as_tensor(loop.current.labels_visible),
                    labels_infrared=torch.as_tensor(loop.current.labels_infrared),
                    infrared_to_visible=loop.current.matches.b_to_a,
                    memory_visible=model.memory_visible.features.cpu(),
                    memory_infrared=model.memory_infrared.features.cpu(),
                    weight=next(model.parameters()).detach().cpu())
    torch.save(dump, os.path.join(out, f"{tag}_rank{comm.get_rank()}.pt"))


def main() -> None:
    mode, procs, root, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    weights = sys.argv[5] if len(sys.argv) > 5 else ""
    tag = f"{mode}_world{procs}"
    launch(probe, procs, dist_url="auto", args=(mode, root, out, weights, tag))


if __name__ == "__main__":
    main()
