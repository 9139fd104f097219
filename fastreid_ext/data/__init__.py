"""Cross-modality data: data sets (registered in fastreid), loaders, samplers, transforms."""
from . import datasets  # noqa: F401  (registers the data sets)
from .build import (build_cross_modality_dataset, build_cross_modality_evaluator, build_cross_modality_train_split,
                    build_inference_loader, build_two_modality_train_loader)
from .common import ImageListDataset, ImageReadError, read_image
from .pseudo_labelled import PseudoLabelledTrainSet
from .datasets import INFRARED, VISIBLE, CrossModalityDataset, DatasetLayoutError, Sample
from .samplers import CrossModalityIdentitySampler, SeededIndex
from .transforms import ChannelExchange, build_modality_transforms

__all__ = ["INFRARED", "VISIBLE", "ChannelExchange", "CrossModalityDataset", "CrossModalityIdentitySampler",
           "SeededIndex", "DatasetLayoutError", "ImageListDataset", "ImageReadError", "PseudoLabelledTrainSet",
           "Sample", "build_cross_modality_dataset",
           "build_cross_modality_evaluator", "build_cross_modality_train_split", "build_inference_loader",
           "build_modality_transforms",
           "build_two_modality_train_loader", "read_image"]
