"""Runs a tiny MIOT training (or evaluation) under fastreid's launch with N CPU processes
(gloo) and saves what each rank ended with; used by test_distributed.py.

    python tests/distributed_probe.py {train|eval|fault} NUM_PROCS DATA_ROOT OUT_DIR [WEIGHTS]

``fault`` trains two epochs and feeds the last rank NaN images at the second epoch's first
step; each rank saves the error it stopped with.
"""
import os
import sys

import fastreid_ext  # noqa: F401  (first)
import torch
from fastreid.engine import launch
from fastreid.engine.defaults import default_argument_parser
from fastreid.utils import comm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # conftest_helpers


def probe(mode: str, root: str, out: str, weights: str, tag: str) -> None:
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
