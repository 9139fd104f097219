"""add_miot_config: every MIOT hyper-parameter (see shared METHOD.md), under cfg.MIOT."""
from typing import Dict, List

from fastreid.config import CfgNode as CN

from fastreid_ext.config_check import Check
from fastreid_ext.matching import MATCHER_REGISTRY, matcher_options
from fastreid_ext.utils import registered_names

from .losses import CPAL_DIRECTIONS


def add_miot_config(cfg: CN) -> CN:
    """Add the ``MIOT`` node to a fastreid config (in place) and return it."""
    _C = cfg
    _C.MIOT = CN()
    # --- model
    _C.MIOT.TWO_STREAM = True  # modality-specific stem, shared deeper layers (AGW / PGM)
    _C.MIOT.STEM_DEPTH = "conv1"  # the stem: conv1..maxpool (AGW / PGM's code) or "layer1" (through layer1)
    # --- alternating loop
    _C.MIOT.ITERS = 200  # training iterations per epoch (PGM: 200 SYSU-MM01, 100 RegDB); 0 = one pass
    _C.MIOT.WARMUP_RATIO = 0.2  # first 20 % of epochs: intra-modality term only (stage 1)
    _C.MIOT.EXTRACT_FLIP = True  # flip-averaged features for clustering
    _C.MIOT.EXTRACT_BATCH = 128  # images per batch when extracting features for clustering
    # memory for the decoded, resized training images that extraction reads every epoch (uint8,
    # 3 x H x W bytes each: SynVI's demo 14 MB, SYSU-MM01 at 288 x 144 about 4.2 GB); a set that
    # needs more is read from disk every epoch, with a warning; 0 = never keep them
    _C.MIOT.EXTRACT_CACHE_MB = 2048
    # --- pseudo labels: k-reciprocal Jaccard distance + DBSCAN, per modality (ClusterContrast / PGM)
    _C.MIOT.CLUSTER = CN()
    _C.MIOT.CLUSTER.EPS = 0.6  # DBSCAN radius (0.3 on RegDB)
    _C.MIOT.CLUSTER.MIN_SAMPLES = 4  # DBSCAN core-point size
    _C.MIOT.CLUSTER.K1 = 30  # k-reciprocal neighbourhood
    _C.MIOT.CLUSTER.K2 = 6  # local query expansion
    _C.MIOT.CLUSTER.KNN_BACKEND = "auto"  # auto | faiss | faiss-gpu | torch | torch-cuda
    # k-reciprocal Jaccard distance: scipy (CPU) | torch (on the model's device) | auto (torch on CUDA)
    _C.MIOT.CLUSTER.JACCARD_BACKEND = "auto"
    # --- OTPA: cross-modality matching of prototypes
    _C.MIOT.MATCHER = CN()
    _C.MIOT.MATCHER.NAME = "ot"  # a name in fastreid_ext.matching.MATCHER_REGISTRY (ot | hungarian), or "none"
    # REG, MAX_ITER, TOL: options of "ot" only; with a matcher that does not take one, its key must keep
    # the default (a start-up error otherwise, never a silent no-op)
    _C.MIOT.MATCHER.REG = 0.05  # entropic regularisation ε of the uniform-prior OT
    _C.MIOT.MATCHER.MAX_ITER = 10000  # Sinkhorn iterations at most (near-permutation costs need thousands)
    _C.MIOT.MATCHER.TOL = 1e-6  # Sinkhorn stopping threshold on the marginal error
    # OTPA "selects" matched prototypes (paper's text): a match's confidence is the share of its
    # cluster's plan mass sent to the partner (row- or column-normalised plan, in [0, 1] for both
    # directions and any Kv, Kr; the prototypes' cosine for Hungarian matchers); matches below the
    # threshold are dropped, and with MUTUAL only pairs whose two directions agree are kept.
    # Dropped clusters keep the intra-modality term only. 0 / False: every cluster matched (today's).
    _C.MIOT.MATCHER.THRESHOLD = 0.0
    _C.MIOT.MATCHER.MUTUAL = False
    # --- PBCL: prototype-based contrastive learning
    _C.MIOT.TEMP = 0.05  # temperature τ of the prototype softmax (ClusterContrast)
    _C.MIOT.MOMENTUM = 0.1  # memory momentum μ: m <- μ m + (1 - μ) f (ClusterContrast 0.1; PGM's code 0.2)
    _C.MIOT.CROSS = CN()
    _C.MIOT.CROSS.ENABLED = True  # cross-modality term L_cross (stage 2)
    _C.MIOT.CROSS.WEIGHT = 1.0  # λ_cross (PGM's code: 0.25)
    # the cross term also moves the other modality's memory at the matched row towards this
    # modality's features, so the two memories approach each other (PGM's code, cm.py); False: ours
    _C.MIOT.CROSS.UPDATE_OTHER_MEMORY = False
    # one direction of the cross term per epoch: visible samples in even epochs, infrared in odd
    # ones (PGM's code, trainers.py "alternate"); False: both directions every epoch
    _C.MIOT.CROSS.ALTERNATE = False
    # --- CPAL: cross prediction alignment
    _C.MIOT.CPAL = CN()
    _C.MIOT.CPAL.ENABLED = True  # L_cpal (stage 2, needs a matcher)
    _C.MIOT.CPAL.WEIGHT = 0.5  # λ_cpal
    # map predictions through the row-normalised plan ("plan") or the selected matches ("matches")
    _C.MIOT.CPAL.TRANSFER = "plan"
    # which prediction CPAL trains: both, each towards the other detached ("symmetric", our first
    # reading), or only the cross-modality one, towards the detached own-modality one ("to_cross":
    # the own side, trained on purer clusters, teaches); the paper's equations are not available
    _C.MIOT.CPAL.DIRECTION = "symmetric"
    _C.MIOT.CPAL.TEMP = 0.0  # CPAL's softmax temperature; 0: MIOT.TEMP
    # --- diagnostics (data sets with ground truth, e.g. SynVI; never used for training)
    _C.MIOT.DIAGNOSTICS = True  # log cluster purity and matching accuracy when true identities are known
    return cfg


# the MIOT.MATCHER keys that carry a matcher's options (fastreid_ext.matching.matcher_options)
MATCHER_OPTION_KEYS = {"REG": "reg", "MAX_ITER": "max_iter", "TOL": "tol", "THRESHOLD": "threshold", "MUTUAL": "mutual"}


def matcher_kwargs(cfg: CN) -> Dict[str, object]:
    """The options of ``MIOT.MATCHER.NAME`` from their keys; the keys of options it does not take
    stay at their defaults (:func:`matcher_option_checks`)."""
    m = cfg.MIOT.MATCHER
    accepted = matcher_options(m.NAME)
    return {option: m[key] for key, option in MATCHER_OPTION_KEYS.items() if option in accepted}


def matcher_option_checks(cfg: CN) -> List[Check]:
    """A key of an option the configured matcher does not take must keep its default: a changed
    ``MIOT.MATCHER.REG`` with the Hungarian matcher is an error, not a silent no-op."""
    name = cfg.MIOT.MATCHER.NAME
    if name.lower() == "none":
        accepted = ()
    elif name in registered_names(MATCHER_REGISTRY):
        accepted = matcher_options(name)
    else:
        return []  # the name itself is reported by miot_config_checks
    defaults = add_miot_config(CN()).MIOT.MATCHER
    return [(f"MIOT.MATCHER.{key}", lambda v, d=defaults[key]: v == d,
             f"its default {defaults[key]!r}: matcher {name!r} takes no option {option!r} (it takes "
             f"{', '.join(accepted) or 'none'})")
            for key, option in MATCHER_OPTION_KEYS.items() if option not in accepted]


def miot_config_checks(cfg: CN) -> List[Check]:
    """Start-up checks of the ``MIOT`` keys: (key, predicate, what is allowed)."""
    matchers = registered_names(MATCHER_REGISTRY) + ["none"]
    return [
        ("MIOT.STEM_DEPTH", lambda v: v in ("conv1", "layer1"), "'conv1' or 'layer1'"),
        ("MIOT.CLUSTER.EPS", lambda v: 0 < v < 1, "in (0, 1) (a Jaccard distance)"),
        ("MIOT.CLUSTER.MIN_SAMPLES", lambda v: v >= 1, ">= 1"),
        ("MIOT.CLUSTER.K1", lambda v: v >= 1, ">= 1"),
        ("MIOT.CLUSTER.K2", lambda v: v >= 1, ">= 1"),
        ("MIOT.CLUSTER.KNN_BACKEND", lambda v: v in ("auto", "faiss", "faiss-gpu", "torch", "torch-cuda"),
         "auto, faiss, faiss-gpu, torch or torch-cuda"),
        ("MIOT.MATCHER.NAME", lambda v: v in matchers, f"one of {matchers}"),
        ("MIOT.MATCHER.REG", lambda v: v > 0, "> 0"),
        ("MIOT.MATCHER.MAX_ITER", lambda v: v >= 1, ">= 1"),
        ("MIOT.MATCHER.THRESHOLD", lambda v: 0 <= v <= 1, "in [0, 1]"),
        ("MIOT.TEMP", lambda v: v > 0, "> 0"),
        ("MIOT.MOMENTUM", lambda v: 0 <= v < 1, "in [0, 1)"),
        ("MIOT.WARMUP_RATIO", lambda v: 0 <= v <= 1, "in [0, 1]"),
        ("MIOT.ITERS", lambda v: v >= 0, ">= 0 (0: one pass over the data)"),
        ("MIOT.EXTRACT_BATCH", lambda v: v >= 1, ">= 1"),
        ("MIOT.EXTRACT_CACHE_MB", lambda v: v >= 0, ">= 0 (0: no cache)"),
        ("MIOT.CLUSTER.JACCARD_BACKEND", lambda v: v in ("auto", "scipy", "torch"), "auto, scipy or torch"),
        ("MIOT.CPAL.TRANSFER", lambda v: v in ("plan", "matches"), "'plan' or 'matches'"),
        ("MIOT.CPAL.DIRECTION", lambda v: v in CPAL_DIRECTIONS, f"one of {list(CPAL_DIRECTIONS)}"),
        ("MIOT.CPAL.TEMP", lambda v: v >= 0, ">= 0 (0: MIOT.TEMP)"),
        ("MIOT.CROSS.WEIGHT", lambda v: v >= 0, ">= 0"),
        ("MIOT.CPAL.WEIGHT", lambda v: v >= 0, ">= 0"),
    ] + matcher_option_checks(cfg)
