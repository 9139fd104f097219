"""Start-up checks of a merged config: unknown keys and impossible values get one clear
message naming the key, the value and what is allowed, before anything long starts."""
import difflib
import os
from typing import Callable, Iterable, List, Tuple

from fastreid.config import CfgNode


class ConfigError(ValueError):
    """The config asks for something impossible; the message lists every problem found."""


def _flat_keys(cfg: CfgNode, prefix: str = "") -> List[str]:
    keys = []
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        keys.extend(_flat_keys(value, name + ".") if isinstance(value, CfgNode) else [name])
    return keys


def explain_unknown_key(cfg: CfgNode, error: KeyError, source: str) -> ConfigError:
    """Turn yacs' ``Non-existent config key`` into a message with the closest valid keys."""
    text = str(error.args[0]) if error.args else str(error)
    key = text.split(":")[-1].strip().strip("'\"")
    close = difflib.get_close_matches(key, _flat_keys(cfg), n=3, cutoff=0.6)
    hint = (f"; did you mean {', '.join(close)}?" if close else
            "; it is not a key of fastreid, fastreid_ext or an installed project (pip install -e .)")
    return ConfigError(f"unknown config key {key!r} in {source}{hint}")


def merge_checked(cfg: CfgNode, config_file: str, opts: Iterable[str]) -> CfgNode:
    """``merge_from_file`` + ``merge_from_list`` with errors that name the key and its source."""
    if not os.path.isfile(config_file):
        raise ConfigError(f"--config-file {config_file!r} does not exist")
    try:
        cfg.merge_from_file(config_file)
    except KeyError as err:
        raise explain_unknown_key(cfg, err, config_file) from err
    opts = list(opts or [])
    if len(opts) % 2:
        raise ConfigError(f"command-line overrides must be KEY VALUE pairs, got an odd number: {opts}")
    try:
        cfg.merge_from_list(opts)
    except (KeyError, AssertionError) as err:  # yacs asserts on unknown keys given as overrides
        raise explain_unknown_key(cfg, KeyError(str(err)), "the command line") from err
    except ValueError as err:
        raise ConfigError(f"command-line override: {err}") from err
    return cfg


Check = Tuple[str, Callable[[object], bool], str]
"""One start-up check: (config key, predicate on its value, what is allowed, for the message)."""


def toolkit_checks(cfg: CfgNode) -> List[Check]:
    """The checks of fastreid's and the toolkit's keys, for every project."""
    from fastreid.data.datasets import DATASET_REGISTRY

    return [
        ("SOLVER.IMS_PER_BATCH", lambda v: v > 0, "a positive integer"),
        ("SOLVER.BASE_LR", lambda v: v > 0, "> 0"),
        ("SOLVER.MAX_EPOCH", lambda v: v > 0, "a positive integer"),
        ("DATALOADER.NUM_INSTANCE", lambda v: v > 0, "a positive integer"),
        ("DATALOADER.NUM_WORKERS", lambda v: v >= 0, ">= 0"),
        ("DATASETS.NAMES", lambda v: all(n in DATASET_REGISTRY for n in v),
         "names registered in fastreid's DATASET_REGISTRY"),
        ("DATASETS.TESTS", lambda v: all(n in DATASET_REGISTRY for n in v),
         "names registered in fastreid's DATASET_REGISTRY"),
        ("DATASETS.REGDB.TRIAL", lambda v: 1 <= v <= 10, "an integer in 1..10"),
        ("DATASETS.ON_CORRUPT_IMAGE", lambda v: v in ("raise", "skip"), "'raise' or 'skip'"),
        ("TEST.CROSS_MODALITY.NUM_TRIALS", lambda v: v >= 1, ">= 1"),
        ("TEST.CROSS_MODALITY.GALLERY_SHOTS", lambda v: v >= 1, ">= 1"),
        ("TEST.CROSS_MODALITY.MAX_RANK", lambda v: v >= 1, ">= 1"),
        ("TEST.IMS_PER_BATCH", lambda v: v > 0, "a positive integer"),
        ("MODEL.DEVICE", lambda v: v == "cpu" or v.startswith("cuda"), "'cpu', 'cuda' or 'cuda:N'"),
        ("PROGRESS", lambda v: v in ("auto", "on", "off"), "'auto', 'on' or 'off'"),
    ]


def _get(cfg: CfgNode, key: str):
    node = cfg
    for part in key.split("."):
        node = node[part]
    return node


def validate_config(cfg: CfgNode, eval_only: bool = False,
                    project_checks: Iterable[Callable[[CfgNode], List[Check]]] = ()) -> None:
    """Raise :class:`ConfigError` listing every impossible value of ``cfg``: the toolkit's
    checks, then each project's (a function ``cfg -> [Check, ...]``)."""
    checks = toolkit_checks(cfg)
    for project_check in project_checks:
        checks += project_check(cfg)
    problems = []
    for key, ok, allowed in checks:
        try:
            value = _get(cfg, key)
        except KeyError:
            continue
        try:
            good = ok(value)
        except TypeError:
            good = False
        if not good:
            problems.append(f"{key} = {value!r}: must be {allowed}")

    backbone = cfg.MODEL.BACKBONE
    if backbone.PRETRAIN and not eval_only:
        if not backbone.PRETRAIN_PATH:
            problems.append("MODEL.BACKBONE.PRETRAIN = True with an empty MODEL.BACKBONE.PRETRAIN_PATH: nothing is "
                            "downloaded; give a local weight file or set PRETRAIN False to train from scratch")
        elif not os.path.isfile(backbone.PRETRAIN_PATH):
            problems.append(f"MODEL.BACKBONE.PRETRAIN_PATH = {backbone.PRETRAIN_PATH!r}: file not found "
                            f"(set PRETRAIN False to train from scratch)")
    if cfg.MODEL.WEIGHTS and not os.path.isfile(cfg.MODEL.WEIGHTS):
        problems.append(f"MODEL.WEIGHTS = {cfg.MODEL.WEIGHTS!r}: file not found")
    if eval_only and not cfg.MODEL.WEIGHTS:
        problems.append("MODEL.WEIGHTS is empty: --eval-only needs the checkpoint to evaluate")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
