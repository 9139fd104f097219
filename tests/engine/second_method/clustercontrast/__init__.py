"""Per-modality ClusterContrast written against fastreid_ext's pseudo-label loop alone: each
modality clustered on its own, a cluster memory per modality, no cross-modality term. The test
that the loop serves a method other than MIOT; installed as a project through an entry point."""
import torch
import torch.nn.functional as F
from fastreid.config import CfgNode as CN
from fastreid.modeling.backbones import build_backbone
from fastreid.modeling.meta_arch import META_ARCH_REGISTRY
from torch import nn

from fastreid_ext.engine import (TRAINER_REGISTRY, ClusterSettings, LoopSettings, Project, PseudoLabelModel,
                                 PseudoLabelTrainer)


def add_clustercontrast_config(cfg: CN) -> CN:
    cfg.CC = CN()
    cfg.CC.ITERS = 3  # iterations per epoch
    cfg.CC.TEMP = 0.05  # softmax temperature over the memory (ClusterContrast)
    cfg.CC.MOMENTUM = 0.1  # memory momentum (ClusterContrast)
    cfg.CC.CLUSTER = CN()
    cfg.CC.CLUSTER.EPS, cfg.CC.CLUSTER.MIN_SAMPLES, cfg.CC.CLUSTER.K1, cfg.CC.CLUSTER.K2 = 0.6, 2, 5, 2
    return cfg


@META_ARCH_REGISTRY.register()
class PerModalityClusterContrast(PseudoLabelModel):
    def __init__(self, cfg):
        super().__init__()
        self.backbone = build_backbone(cfg)
        self.neck = nn.BatchNorm1d(cfg.MODEL.BACKBONE.FEAT_DIM)
        self.register_buffer("pixel_mean", torch.tensor(cfg.MODEL.PIXEL_MEAN).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.MODEL.PIXEL_STD).view(1, -1, 1, 1), persistent=False)
        self.temp, self.momentum = cfg.CC.TEMP, cfg.CC.MOMENTUM
        self.labels = torch.zeros(0, dtype=torch.long)  # pseudo label of every training image
        self.memories = [torch.zeros(0), torch.zeros(0)]  # (K_m, D) per modality
        self.queued = []  # (modality, features, labels) of the last forward

    def set_targets(self, targets):
        self.labels = targets.labels()
        self.memories = [F.normalize(p.clone(), dim=1) for p in (targets.prototypes_visible,
                                                                targets.prototypes_infrared)]

    def forward(self, batch):
        x = (batch["images"] - self.pixel_mean) / self.pixel_std
        features = F.normalize(self.neck(self.backbone(x).mean(dim=(2, 3))), dim=1)
        if not self.training:
            return features
        labels, modalities = self.labels[batch["index"]], batch["modalities"]
        loss, self.queued = features.new_zeros(()), []
        for modality in (0, 1):
            keep = (modalities == modality) & (labels >= 0)
            logits = features[keep] @ self.memories[modality].t() / self.temp
            loss = loss + F.cross_entropy(logits, labels[keep], reduction="sum")
            self.queued.append((modality, features[keep].detach(), labels[keep]))
        return {"loss_cc": loss / len(features)}

    def apply_updates(self):
        for modality, features, labels in self.queued:
            memory = self.memories[modality]
            for feature, label in zip(features, labels):
                memory[label] = F.normalize(self.momentum * memory[label] + (1 - self.momentum) * feature, dim=0)
        self.queued = []


@TRAINER_REGISTRY.register()
class ClusterContrastTrainer(PseudoLabelTrainer):
    @classmethod
    def iterations_per_epoch(cls, cfg) -> int:
        return cfg.CC.ITERS

    @classmethod
    def loop_settings(cls, cfg) -> LoopSettings:
        return LoopSettings(ClusterSettings.from_config(cfg, "CC.CLUSTER"), extract_batch=64, keys="CC")


PROJECT = Project(name="clustercontrast", add_config=add_clustercontrast_config)
