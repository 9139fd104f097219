"""The MIOT model: a fastreid backbone with a modality-specific stem, a GeM + BN neck, and
the per-modality prototype memories that its training losses are computed against."""
import copy
from typing import Dict, Tuple

import torch
import torch.nn.functional as F
from fastreid.layers import pooling
from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from torch import nn

from fastreid_ext.engine.loop import PseudoLabelModel
from fastreid_ext.utils import raise_on_any_rank

from .losses import cross_prediction_alignment, prototype_contrast, transfer_maps
from .memory import PrototypeMemory

RESNET_STAGES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
MOBILENETV2_STAGES = tuple(f"features.{i}" for i in range(18)) + ("conv",)
# backbone class -> (its stages in forward order, MIOT.STEM_DEPTH -> the stem's last stage)
BACKBONE_STAGES = {
    "ResNet": (RESNET_STAGES, {"conv1": "maxpool", "layer1": "layer1"}),  # AGW / PGM: conv1..maxpool
    "MobileNetV2": (MOBILENETV2_STAGES, {"conv1": "features.0", "layer1": "features.1"}),  # first conv / block
}


def split_backbone(backbone: nn.Module, stem_depth: str = "conv1") -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    """Names of the (stem, trunk) stages of a fastreid backbone (:data:`BACKBONE_STAGES`: ResNet
    family, MobileNetV2); the stem runs to the first convolution's block (``conv1``: conv1..maxpool
    of a ResNet, AGW / PGM) or through the first stage of blocks (``layer1``)."""
    kind = type(backbone).__name__
    if kind not in BACKBONE_STAGES:
        raise ValueError(f"MIOT splits {sorted(BACKBONE_STAGES)} backbones into stem and trunk; MODEL.BACKBONE.NAME "
                         f"built a {kind}")
    stages, stem_ends = BACKBONE_STAGES[kind]
    if stem_depth not in stem_ends:
        raise ValueError(f"MIOT.STEM_DEPTH must be one of {sorted(stem_ends)}, got {stem_depth!r}")
    if any(len(getattr(backbone, f"NL_{i}", [])) for i in range(1, 5)):
        raise ValueError("MIOT needs a backbone without non-local blocks (MODEL.BACKBONE.WITH_NL False)")
    cut = stages.index(stem_ends[stem_depth]) + 1
    return stages[:cut], stages[cut:]


def _first_paths(batched_inputs: Dict, bad: torch.Tensor, count: int = 3) -> list:
    """The paths of the first ``count`` images flagged in ``bad`` (for error messages)."""
    return [p for p, b in zip(batched_inputs.get("img_paths", []), bad.tolist()) if b][:count]


@META_ARCH_REGISTRY.register()
class MIOT(PseudoLabelModel):
    """Embeds images into L2-normalised features; in training, returns the MIOT losses.

    Inputs are fastreid batches: ``images`` (B, 3, H, W) in [0, 255], ``modalities`` (B,)
    (0 visible, 1 infrared) and, in training, ``index`` (B,) into the training set, whose
    pseudo labels, memories and matches the loop sets with :meth:`set_targets`.
    """

    def __init__(self, cfg):
        super().__init__()
        # the visible stem and the shared trunk are the backbone's own modules (checkpoint keys
        # "backbone.*", as fastreid's meta-architectures have them); the infrared stem, with
        # TWO_STREAM, is a copy of the stem made after the pretrained weights are loaded
        self.backbone = build_backbone(cfg)
        self.stem_names, self.trunk_names = split_backbone(self.backbone, cfg.MIOT.STEM_DEPTH)
        self.stem_infrared = nn.Sequential(*(copy.deepcopy(self.backbone.get_submodule(n)) for n in self.stem_names)) \
            if cfg.MIOT.TWO_STREAM else None
        self.pool = getattr(pooling, cfg.MODEL.HEADS.POOL_LAYER)()
        feat_dim = cfg.MODEL.BACKBONE.FEAT_DIM
        self.neck = nn.BatchNorm1d(feat_dim)
        self.neck.bias.requires_grad_(False)
        self.register_buffer("pixel_mean", torch.tensor(cfg.MODEL.PIXEL_MEAN).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.MODEL.PIXEL_STD).view(1, -1, 1, 1), persistent=False)

        self.temperature = cfg.MIOT.TEMP
        self.memory_visible = PrototypeMemory(feat_dim, cfg.MIOT.MOMENTUM)
        self.memory_infrared = PrototypeMemory(feat_dim, cfg.MIOT.MOMENTUM)
        # pseudo label of every training image (visible first, then infrared); -1 = outlier
        self.register_buffer("pseudo_labels", torch.zeros(0, dtype=torch.long), persistent=False)
        # cross-modality matches of the current epoch (-1 = unmatched) and the CPAL transfer maps
        self.register_buffer("visible_to_infrared", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("infrared_to_visible", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("transfer_visible", torch.zeros(0, 0), persistent=False)
        self.register_buffer("transfer_infrared", torch.zeros(0, 0), persistent=False)
        self.cross_weight = 0.0  # set with the targets: 0 in the warm-up stage or without matching
        self.cpal_weight = 0.0
        m = cfg.MIOT
        self.configured_cross_weight = m.CROSS.WEIGHT if m.CROSS.ENABLED else 0.0
        self.configured_cpal_weight = m.CPAL.WEIGHT if m.CPAL.ENABLED else 0.0
        self.cpal_transfer = m.CPAL.TRANSFER
        self.cpal_temperature = m.CPAL.TEMP  # 0: the PBCL temperature (self.temperature)
        self.cpal_direction = m.CPAL.DIRECTION
        self.update_other_memory = m.CROSS.UPDATE_OTHER_MEMORY
        self.alternate_cross = m.CROSS.ALTERNATE
        self.cross_modalities = (0, 1)  # whose samples take the cross term this epoch

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    # ---------------------------------------------------------------- targets set by the loop
    @torch.no_grad()
    def set_targets(self, targets) -> None:
        """This epoch's :class:`~miot.pseudo_labels.PseudoLabels`: the memories start from its
        prototypes, sample indices map to its labels, and its matches (none: intra-modality
        term only) give the cross-modality targets and the CPAL transfer maps."""
        self.memory_visible.reset(targets.prototypes_visible)
        self.memory_infrared.reset(targets.prototypes_infrared)
        self.pseudo_labels = targets.labels().to(self.device)
        self.cross_modalities = (targets.epoch % 2,) if self.alternate_cross else (0, 1)  # PGM: odd epochs infrared
        matches = targets.matches
        if matches is None:
            empty = torch.zeros(0, dtype=torch.long)
            self._set_matches(empty, empty, torch.zeros(0, 0), torch.zeros(0, 0), 0.0, 0.0)
            return
        transfer_v, transfer_r = transfer_maps(matches, len(targets.prototypes_visible),
                                               len(targets.prototypes_infrared), self.cpal_transfer)
        self._set_matches(matches.a_to_b, matches.b_to_a, transfer_v, transfer_r, self.configured_cross_weight,
                          self.configured_cpal_weight)

    def _set_matches(self, visible_to_infrared: torch.Tensor, infrared_to_visible: torch.Tensor,
                     transfer_visible: torch.Tensor, transfer_infrared: torch.Tensor,
                     cross_weight: float, cpal_weight: float) -> None:
        """Matches (Kv,), (Kr,) and CPAL transfer maps (Kv, Kr), (Kr, Kv) of this epoch."""
        self.visible_to_infrared = visible_to_infrared.to(self.device, torch.long)
        self.infrared_to_visible = infrared_to_visible.to(self.device, torch.long)
        self.transfer_visible = transfer_visible.to(self.device, torch.float32)
        self.transfer_infrared = transfer_infrared.to(self.device, torch.float32)
        self.cross_weight, self.cpal_weight = float(cross_weight), float(cpal_weight)

    def apply_updates(self) -> None:
        """The memories' momentum updates queued by this step's forward pass."""
        self.memory_visible.apply_updates()
        self.memory_infrared.apply_updates()

    # ---------------------------------------------------------------------------- forward
    def embed(self, images: torch.Tensor, modalities: torch.Tensor) -> torch.Tensor:
        """(B, D) L2-normalised embeddings."""
        x = (images.to(self.device, torch.float32) - self.pixel_mean) / self.pixel_std
        modalities = modalities.to(self.device)
        # each modality passes the stem on its own, so that the stem's batch-norm statistics are
        # per modality in training, with a shared stem (TWO_STREAM False) as with two
        infrared = modalities == 1
        visible_stem = lambda part: self._run(self.stem_names, part)  # noqa: E731
        stem_out = None
        infrared_stem = self.stem_infrared if self.stem_infrared is not None else visible_stem
        for mask, stem in ((~infrared, visible_stem), (infrared, infrared_stem)):
            if bool(mask.any()):
                part = stem(x[mask])
                if stem_out is None:
                    stem_out = part.new_empty((x.shape[0],) + part.shape[1:])
                stem_out[mask] = part
        pooled = self.pool(self._run(self.trunk_names, stem_out)).flatten(1)
        return F.normalize(self.neck(pooled), dim=1)

    def _run(self, names: Tuple[str, ...], x: torch.Tensor) -> torch.Tensor:
        for name in names:
            x = self.backbone.get_submodule(name)(x)
        return x

    def forward(self, batched_inputs: Dict):
        if self.training:  # before the forward's collectives (batch norm over every rank): a bad image on one
            # rank would make every rank's embeddings non-finite, and the others' images would be blamed
            images = batched_inputs["images"]
            bad = ~torch.isfinite(images.flatten(1)).all(dim=1)
            problem = None
            if bool(bad.any()):
                paths = _first_paths(batched_inputs, bad)
                problem = f"MIOT: non-finite pixel values in {int(bad.sum())} images (e.g. {paths}); check these images"
            raise_on_any_rank(problem)
        features = self.embed(batched_inputs["images"], batched_inputs["modalities"])
        if not self.training:
            return features
        if self.pseudo_labels.numel() == 0:
            raise RuntimeError("MIOT has no pseudo labels: train it with MIOTTrainer, whose loop sets them")
        labels = self.pseudo_labels[batched_inputs["index"].to(self.device)]
        losses, problem = {}, None
        bad = ~torch.isfinite(features).all(dim=1)
        if bool(bad.any()):
            paths = _first_paths(batched_inputs, bad)
            problem = (f"MIOT: non-finite embeddings for {int(bad.sum())} images (e.g. {paths}); "
                       f"the step is not taken (lower SOLVER.BASE_LR, check these images)")
        else:
            losses = self.losses(features, labels, batched_inputs["modalities"].to(self.device))
            bad_terms = [(name, value.item()) for name, value in losses.items() if not bool(torch.isfinite(value))]
            if bad_terms:
                problem = (f"MIOT: {bad_terms[0][0]} is {bad_terms[0][1]}; the step is not taken and the memories "
                           f"are unchanged (lower SOLVER.BASE_LR or raise MIOT.TEMP)")
        raise_on_any_rank(problem)  # every rank stops together: none is left waiting in backward
        return losses

    def losses(self, features: torch.Tensor, labels: torch.Tensor, modalities: torch.Tensor) -> Dict[str, torch.Tensor]:
        """PBCL (intra + cross) and CPAL against the memories; labels (B,) index each sample's
        own-modality prototype (-1 = outlier). The cross term counts for the samples of
        ``cross_modalities`` (both, or this epoch's with ``MIOT.CROSS.ALTERNATE``); with
        ``MIOT.CROSS.UPDATE_OTHER_MEMORY`` it also queues a momentum update of the other
        modality's memory at each sample's matched row (PGM)."""
        intra, cross, cpal = [], [], []
        cpal_temperature = self.cpal_temperature if self.cpal_temperature > 0 else self.temperature
        sides = ((0, self.memory_visible, self.memory_infrared, self.visible_to_infrared, self.transfer_visible),
                 (1, self.memory_infrared, self.memory_visible, self.infrared_to_visible, self.transfer_infrared))
        for modality, own, other, own_to_other, transfer in sides:
            mask = modalities == modality
            f, y = features[mask], labels[mask]
            own_logits = own(f, y)  # queues this modality's memory update (applied after the step)
            intra.append(prototype_contrast(own_logits, y, self.temperature) * f.shape[0])
            if self.cross_weight > 0 or self.cpal_weight > 0:
                no_update = torch.full_like(y, -1)
                cross_targets = torch.where(y >= 0, own_to_other[y.clamp_min(0)], no_update)
                if modality not in self.cross_modalities:
                    cross_targets = no_update
                other_logits = other(f, cross_targets if self.update_other_memory else no_update)
                cross.append(prototype_contrast(other_logits, cross_targets, self.temperature) * f.shape[0])
                cpal.append(cross_prediction_alignment(own_logits, other_logits, transfer, y, cpal_temperature,
                                                       direction=self.cpal_direction) * f.shape[0])
        batch = features.shape[0]
        losses = {"loss_intra": sum(intra) / batch}
        if cross:
            losses["loss_cross"] = self.cross_weight * sum(cross) / batch
            losses["loss_cpal"] = self.cpal_weight * sum(cpal) / batch
        return losses

