"""Trainer selection and set-up helpers shared by the entry points."""
from .defaults import (TRAINER_REGISTRY, build_trainer_class, load_trained_model, resolve_device, seed_everything,
                       setup_config)

__all__ = ["TRAINER_REGISTRY", "build_trainer_class", "load_trained_model", "resolve_device", "seed_everything",
           "setup_config"]
