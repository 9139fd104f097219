"""Backbone weights from a local file, in either of the two formats users have:

- torchvision / ImageNet: a state dict with ``conv1.weight``, ``layer1.0...`` (its ``fc.*``
  classifier is dropped; a ``module.`` prefix from DataParallel is stripped);
- a fastreid checkpoint: ``{"model": state_dict, ...}`` of any meta-architecture that keeps its
  backbone as ``backbone`` (fastreid's Baseline, AGW, SBS, and projects that do the same): the
  ``backbone.*`` entries are taken, heads and everything else dropped.

Every weight of the backbone must be found with the right shape, and every taken weight of
the file must be used, unless partial loading is asked for on purpose.
"""
import logging
from typing import Dict

import torch
from torch import nn

logger = logging.getLogger(__name__)


def backbone_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """The backbone weights stored in ``path`` (either format above), names as the backbone's own."""
    try:
        stored = torch.load(path, map_location="cpu")
    except FileNotFoundError:
        raise
    except Exception as err:  # not a torch file, or pickled objects torch will not load
        raise ValueError(f"MODEL.BACKBONE.PRETRAIN_PATH {path!r} is not a readable weight file: {err}") from err
    if not isinstance(stored, dict):
        raise ValueError(f"MODEL.BACKBONE.PRETRAIN_PATH {path!r} holds a {type(stored).__name__}, not a state dict")
    if isinstance(stored.get("model"), dict):  # a fastreid checkpoint
        state = {k[len("backbone."):]: v for k, v in stored["model"].items() if k.startswith("backbone.")}
        if not state:
            names = sorted(stored["model"])[:5]
            raise ValueError(f"{path!r} is a fastreid checkpoint without 'backbone.' weights (its model has e.g. "
                             f"{names}): it cannot initialise a backbone")
        return state
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in stored.items()}
    return {k: v for k, v in state.items() if not k.startswith("fc.") and isinstance(v, torch.Tensor)}


def load_backbone_weights(backbone: nn.Module, path: str, allow_partial: bool = False) -> None:
    """Copy the weights of ``path`` into ``backbone``.

    Raises ``ValueError`` listing the backbone weights the file lacks (or has with another
    shape) and the file's weights the backbone has no place for, unless ``allow_partial``
    (``MODEL.BACKBONE.PRETRAIN_PARTIAL``), which loads what matches and logs the rest.
    """
    state = backbone_state_dict(path)
    own = backbone.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and state[k].shape != own[k].shape]
    unused = [k for k in state if k not in own]
    problems = [f"{len(keys)} {what}: {keys[:8]}{' ...' if len(keys) > 8 else ''}"
                for what, keys in (("backbone weights missing from the file", missing),
                                   ("weights of another shape (file vs backbone)", mismatched),
                                   ("weights of the file the backbone has no place for", unused)) if keys]
    if problems and not allow_partial:
        raise ValueError(f"MODEL.BACKBONE.PRETRAIN_PATH {path!r} does not fit the backbone: " + "; ".join(problems)
                         + ". Check MODEL.BACKBONE (DEPTH, WITH_IBN, WITH_SE, WITH_NL), or set "
                           "MODEL.BACKBONE.PRETRAIN_PARTIAL True to load only what fits on purpose")
    fitting = {k: v for k, v in state.items() if k in own and v.shape == own[k].shape}
    backbone.load_state_dict(fitting, strict=False)
    logger.info("loaded %d backbone tensors from %s%s", len(fitting), path,
                f" (partial: {'; '.join(problems)})" if problems else "")
