"""Trainer selection and set-up helpers shared by the entry points."""
from .defaults import TRAINER_REGISTRY, build_trainer_class, resolve_device, seed_everything

__all__ = ["TRAINER_REGISTRY", "build_trainer_class", "resolve_device", "seed_everything"]
