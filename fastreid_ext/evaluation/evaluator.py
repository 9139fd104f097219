"""A fastreid ``DatasetEvaluator`` running a cross-modality protocol's trials."""
import itertools
import logging
from collections import OrderedDict
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F
from fastreid.evaluation.evaluator import DatasetEvaluator
from fastreid.utils import comm

from .protocols import sample_random_gallery
from .rank import evaluate_cross_modality

logger = logging.getLogger(__name__)

RANKS = (1, 5, 10, 20)


class CrossModalityEvaluator(DatasetEvaluator):
    """Collects embeddings of the query and gallery-candidate images (in any order, on any
    number of ranks) and reports Rank-1/5/10/20, mAP and mINP in percent: the mean over the
    protocol's trials, with ``*_std`` over trials when there are several.

    Args:
        query, gallery: the data set's query and gallery-candidate samples; the loader's
            items carry ``index`` = position in ``query + gallery``.
        protocol: ``"sysu"``, ``"regdb"`` or ``"llcm"``.
        random_gallery: draw each trial's gallery (``shots`` per identity and camera).
        num_trials: number of random-gallery trials (trial ``k`` is seeded with ``k``).
        metric: ``"cosine"`` or ``"euclidean"`` (fastreid's ``TEST.METRIC``).
    """

    def __init__(self, query: List, gallery: List, protocol: str, random_gallery: bool,
                 num_trials: int = 10, shots: int = 1, metric: str = "cosine", max_rank: int = 20):
        self.q_pids = np.asarray([s.pid for s in query])
        self.q_camids = np.asarray([s.camid for s in query])
        self.g_pids = np.asarray([s.pid for s in gallery])
        self.g_camids = np.asarray([s.camid for s in gallery])
        self.protocol = protocol
        self.num_trials = num_trials if random_gallery else 1
        self.random_gallery = random_gallery
        self.shots = shots
        self.metric = metric
        self.max_rank = max_rank
        self._features: List[torch.Tensor] = []
        self._indices: List[torch.Tensor] = []

    def reset(self) -> None:
        self._features, self._indices = [], []

    def process(self, inputs: Dict, outputs: torch.Tensor) -> None:
        self._features.append(outputs.detach().to("cpu", torch.float32))
        self._indices.append(inputs["index"].to("cpu"))

    def distances(self, features: torch.Tensor) -> np.ndarray:
        """(num_query, num_gallery) distances between L2-normalised (cosine) or raw features."""
        num_query = len(self.q_pids)
        if self.metric == "cosine":
            features = F.normalize(features, dim=1)
            return (1 - features[:num_query] @ features[num_query:].t()).numpy()
        return torch.cdist(features[:num_query], features[num_query:]).numpy()

    def evaluate(self) -> Dict[str, float]:
        features, indices = self._features, self._indices
        if comm.get_world_size() > 1:
            comm.synchronize()
            features = list(itertools.chain(*comm.gather(features, dst=0)))
            indices = list(itertools.chain(*comm.gather(indices, dst=0)))
            if not comm.is_main_process():
                return {}
        features, indices = torch.cat(features), torch.cat(indices)
        total = len(self.q_pids) + len(self.g_pids)
        ordered = torch.zeros(total, features.shape[1])
        seen = torch.zeros(total, dtype=torch.bool)
        ordered[indices], seen[indices] = features, True
        if not bool(seen.all()):
            raise RuntimeError(f"the evaluator got features for {int(seen.sum())} of {total} test images")
        distmat = self.distances(ordered)

        ranks = [r for r in RANKS if r <= self.max_rank]
        per_trial = []
        for trial in range(self.num_trials):
            if self.random_gallery:
                chosen = sample_random_gallery(self.g_pids, self.g_camids, trial, self.shots)
            else:
                chosen = np.arange(len(self.g_pids))
            cmc, mAP, mINP = evaluate_cross_modality(
                distmat[:, chosen], self.q_pids, self.g_pids[chosen], self.q_camids,
                self.g_camids[chosen], protocol=self.protocol, max_rank=self.max_rank)
            per_trial.append([cmc[r - 1] for r in ranks] + [mAP, mINP])
        scores = np.asarray(per_trial) * 100  # (num_trials, len(ranks) + 2)
        names = [f"Rank-{r}" for r in ranks] + ["mAP", "mINP"]
        results = OrderedDict((name, float(v)) for name, v in zip(names, scores.mean(0)))
        results["metric"] = (results["Rank-1"] + results["mAP"]) / 2
        if self.num_trials > 1:
            for name, v in zip(names, scores.std(0)):
                if name in ("Rank-1", "mAP", "mINP"):
                    results[f"{name}_std"] = float(v)
        return results
