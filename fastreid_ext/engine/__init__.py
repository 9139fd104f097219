"""Set-up of the entry points, the trainer registry, projects, feature extraction and the supervised
cross-modality trainer."""
from .defaults import (TRAINER_REGISTRY, build_trainer_class, load_trained_model, resolve_device, seed_everything,
                       setup, setup_config, train_or_evaluate)
from .extract import extract_features, unwrap
from .projects import Project, installed_projects
from .supervised import CrossModalitySupervisedTrainer, LabelledTrainSet

__all__ = ["TRAINER_REGISTRY", "CrossModalitySupervisedTrainer", "LabelledTrainSet", "Project", "build_trainer_class",
           "extract_features", "installed_projects", "load_trained_model", "resolve_device", "seed_everything",
           "setup", "setup_config", "train_or_evaluate", "unwrap"]
