"""Set-up of the entry points, the trainer registry, projects, feature extraction and the supervised
cross-modality trainer."""
from .defaults import (TRAINER_REGISTRY, apply_allocator_policy, build_trainer, build_trainer_class,
                       load_trained_model, resolve_device, seed_everything, setup, setup_config, train_or_evaluate)
from .distributed import GlobalBatchNormMixin, add_launch_arguments, launch, under_torchrun
from .extract import ImageBatchCache, extract_features, unwrap
from .loop import (ClusterSettings, EpochTargets, LoopSettings, PseudoLabelLoop, PseudoLabelModel,
                   cluster_each_modality, cluster_modality)
from .progress import WallClockMetricPrinter
from .pseudo_trainer import PseudoLabelTrainer
from .projects import Project, installed_projects
from .supervised import CrossModalitySupervisedTrainer, LabelledTrainSet

__all__ = ["TRAINER_REGISTRY", "ClusterSettings", "CrossModalitySupervisedTrainer", "EpochTargets",
           "GlobalBatchNormMixin", "ImageBatchCache", "LabelledTrainSet", "LoopSettings", "Project", "PseudoLabelLoop",
           "PseudoLabelModel", "PseudoLabelTrainer", "WallClockMetricPrinter", "add_launch_arguments",
           "apply_allocator_policy", "build_trainer", "build_trainer_class", "cluster_each_modality",
           "cluster_modality", "extract_features", "installed_projects", "launch", "load_trained_model",
           "resolve_device", "seed_everything", "setup", "setup_config", "train_or_evaluate", "under_torchrun",
           "unwrap"]
