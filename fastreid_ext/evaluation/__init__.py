"""Cross-modality evaluation: protocols, metrics and a fastreid DatasetEvaluator."""
from .evaluator import CrossModalityEvaluator
from .protocols import sample_random_gallery
from .rank import PROTOCOLS, evaluate_cross_modality

__all__ = ["CrossModalityEvaluator", "PROTOCOLS", "evaluate_cross_modality", "sample_random_gallery"]
