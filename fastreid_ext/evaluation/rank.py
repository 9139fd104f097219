"""Cross-modality ranking metrics: CMC, mAP and mINP under the field's protocols.

``sysu`` reproduces the evaluation code behind published SYSU-MM01 numbers: for a query from
camera 3 every gallery image from camera 2 is ignored (the two cameras share a scene); the
CMC counts *distinct gallery identities* in rank order after that removal, while mAP and mINP
are computed over gallery images. ``regdb`` and ``llcm`` use the standard image-level CMC.
Queries whose identity is absent from the (remaining) gallery are left out of every metric.
"""
from typing import Tuple

import numpy as np

PROTOCOLS = ("sysu", "regdb", "llcm")
SYSU_IGNORED_CAMERAS = {3: 2}  # query camera -> gallery camera whose images are ignored


def _average_precision(matches: np.ndarray) -> Tuple[float, float]:
    """AP and INP of one ranked 0/1 match vector with at least one match."""
    hits = np.cumsum(matches)
    positions = np.flatnonzero(matches)
    ap = float(np.mean(hits[positions] / (positions + 1.0)))
    inp = float(hits[positions[-1]] / (positions[-1] + 1.0))
    return ap, inp


def _cmc_row(matches: np.ndarray, max_rank: int) -> np.ndarray:
    cmc = np.minimum(np.cumsum(matches), 1)[:max_rank].astype(np.float64)
    if cmc.size < max_rank:  # fewer ranked items than max_rank: the curve stays flat
        cmc = np.concatenate([cmc, np.full(max_rank - cmc.size, cmc[-1] if cmc.size else 0.0)])
    return cmc


def evaluate_cross_modality(distmat: np.ndarray, q_pids: np.ndarray, g_pids: np.ndarray,
                            q_camids: np.ndarray, g_camids: np.ndarray, protocol: str = "sysu",
                            max_rank: int = 20) -> Tuple[np.ndarray, float, float]:
    """CMC curve (fractions, length ``max_rank``), mAP and mINP (fractions in [0, 1]).

    Args:
        distmat: (num_query, num_gallery) distances, smaller is more similar.
        q_pids, g_pids: identities of query and gallery images.
        q_camids, g_camids: their cameras (SYSU-MM01 numbering for ``sysu``).
        protocol: one of ``"sysu"``, ``"regdb"``, ``"llcm"``.
        max_rank: length of the CMC curve.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    if distmat.shape != (len(q_pids), len(g_pids)):
        raise ValueError(f"distmat has shape {distmat.shape}, expected ({len(q_pids)}, {len(g_pids)}) "
                         f"from the query and gallery identities")
    order = np.argsort(distmat, axis=1, kind="stable")
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(len(q_pids)):
        ranked = order[q]
        if protocol == "sysu" and q_camids[q] in SYSU_IGNORED_CAMERAS:
            ranked = ranked[g_camids[ranked] != SYSU_IGNORED_CAMERAS[q_camids[q]]]
        matches = (g_pids[ranked] == q_pids[q]).astype(np.int64)
        if not matches.any():
            continue
        if protocol == "sysu":
            ranked_pids = g_pids[ranked]
            _, first = np.unique(ranked_pids, return_index=True)
            distinct = ranked_pids[np.sort(first)]
            all_cmc.append(_cmc_row((distinct == q_pids[q]).astype(np.int64), max_rank))
        else:
            all_cmc.append(_cmc_row(matches, max_rank))
        ap, inp = _average_precision(matches)
        all_ap.append(ap)
        all_inp.append(inp)
    if not all_cmc:
        raise ValueError("no query has a matching identity in the gallery: check the query/gallery split")
    return np.mean(all_cmc, axis=0), float(np.mean(all_ap)), float(np.mean(all_inp))
