"""Config keys that fastreid_ext adds to fastreid's defaults."""
import os

from fastreid.config import CfgNode as CN


def add_ext_config(cfg: CN) -> CN:
    """Add the toolkit's keys to a fastreid config (in place) and return it."""
    cfg.SEED = -1  # global seed for sampling, clustering and evaluation trials; < 0: random
    cfg.PROGRESS = "auto"  # tqdm bars for extraction and clustering: auto (on a terminal only), on, off
    # glibc's malloc keeps freed memory for reuse instead of mapping fresh pages for every large
    # tensor (fastreid_ext.utils.keep_freed_memory): same numbers, CPU steps and extraction faster,
    # peak memory somewhat higher (benchmarks/bench_allocator.py); no effect without glibc
    cfg.KEEP_FREED_MEMORY = True
    # Directory holding the data sets (SYSU-MM01/, RegDB/, ...); fastreid reads the same from
    # the FASTREID_DATASETS environment variable.
    cfg.DATASETS.ROOT = os.getenv("FASTREID_DATASETS", "datasets")

    # a corrupt image met during training: "raise" stops with its path, "skip" warns and uses the next image
    cfg.DATASETS.ON_CORRUPT_IMAGE = "raise"
    cfg.DATASETS.REGDB = CN()
    cfg.DATASETS.REGDB.TRIAL = 1  # RegDB train/test split, 1..10

    # Augmentations specific to visible-infrared training (fastreid's INPUT keys still apply).
    cfg.INPUT.CROSS_MODALITY = CN()
    cfg.INPUT.CROSS_MODALITY.CHANNEL_EXCHANGE = CN()
    cfg.INPUT.CROSS_MODALITY.CHANNEL_EXCHANGE.ENABLED = True  # visible: random channel / grayscale (CAJ)
    cfg.INPUT.CROSS_MODALITY.CHANNEL_EXCHANGE.PROB = 0.5
    cfg.INPUT.CROSS_MODALITY.RANDOM_GRAYSCALE_PROB = 0.0  # visible: extra random grayscale
    cfg.INPUT.CROSS_MODALITY.COLOR_JITTER = CN()  # visible: colour jitter (PGM: 0.5 for all four)
    cfg.INPUT.CROSS_MODALITY.COLOR_JITTER.ENABLED = False
    cfg.INPUT.CROSS_MODALITY.COLOR_JITTER.BRIGHTNESS = 0.5
    cfg.INPUT.CROSS_MODALITY.COLOR_JITTER.CONTRAST = 0.5
    cfg.INPUT.CROSS_MODALITY.COLOR_JITTER.SATURATION = 0.5
    cfg.INPUT.CROSS_MODALITY.COLOR_JITTER.HUE = 0.5
    cfg.INPUT.CROSS_MODALITY.IR_JITTER = CN()
    cfg.INPUT.CROSS_MODALITY.IR_JITTER.ENABLED = True  # infrared: brightness/contrast jitter
    cfg.INPUT.CROSS_MODALITY.IR_JITTER.BRIGHTNESS = 0.3
    cfg.INPUT.CROSS_MODALITY.IR_JITTER.CONTRAST = 0.3
    # infrared: a random channel copied to all three, or grayscale (PGM's ChannelAdapGray)
    cfg.INPUT.CROSS_MODALITY.CHANNEL_ADAPTIVE_GRAY = CN()
    cfg.INPUT.CROSS_MODALITY.CHANNEL_ADAPTIVE_GRAY.ENABLED = False
    cfg.INPUT.CROSS_MODALITY.CHANNEL_ADAPTIVE_GRAY.PROB = 0.5  # of grayscale, in its fourth choice
    # PGM's channel random erasing (a box filled with the per-channel mean) is fastreid's
    # INPUT.REA with its default VALUE (the pixel mean).

    # P x K batches draw a pseudo identity's K images from different cameras where it has them
    # (PGM's RandomMultipleGallerySampler); False: any K of its images
    cfg.DATALOADER.CAMERA_AWARE = False

    cfg.TEST.CROSS_MODALITY = CN()
    cfg.TEST.CROSS_MODALITY.NUM_TRIALS = 10  # random-gallery trials (SYSU-MM01, LLCM); trial k uses seed k
    cfg.TEST.CROSS_MODALITY.GALLERY_SHOTS = 1  # gallery images per (id, camera): 1 single-shot, 10 multi-shot
    cfg.TEST.CROSS_MODALITY.MAX_RANK = 20  # length of the CMC curve

    # MODEL.BACKBONE.PRETRAIN_PATH may hold torchvision (ImageNet) weights or a fastreid checkpoint
    # (its backbone is taken); a backbone weight it lacks is an error unless loading part of it
    # is meant (e.g. ImageNet weights into a backbone with non-local blocks)
    cfg.MODEL.BACKBONE.PRETRAIN_PARTIAL = False

    # with several processes, batch-norm statistics over the global batch (every rank's images;
    # fastreid_ext.modeling.GlobalBatchNorm, any device), as one process with the whole batch has
    # them; False: each rank normalises with its own share's statistics. No effect on one process.
    cfg.MODEL.SYNC_BN = True

    cfg.TRAINER = CN()
    cfg.TRAINER.NAME = "DefaultTrainer"  # a name in fastreid_ext.engine.TRAINER_REGISTRY
    return cfg
