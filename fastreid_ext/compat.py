"""The one module that makes fastreid 1.4.0 run on Python 3.11, torch 2.x, numpy >= 1.24
and machines without CUDA.

fastreid 1.4.0 (the last PyPI release) was written for Python 3.8, torch 1.13 and numpy
< 1.24, and assumes a CUDA device. Each fix below names the fastreid code it replaces and
is applied once, when :mod:`fastreid_ext` is imported (before anything imports
``fastreid.data``). Nothing else in this project touches fastreid internals.

A fix can be turned off for debugging (and for the tests that show what breaks without it)
with ``FASTREID_EXT_COMPAT_SKIP=name1,name2`` in the environment.
"""
from __future__ import annotations

import collections
import collections.abc
import importlib
import logging
import os
import sys
import types
import warnings
from typing import Callable, Dict, List

import numpy as np
import torch

from .utils import cuda_usable

logger = logging.getLogger(__name__)

_FIXES: Dict[str, Callable[[], None]] = {}
_APPLIED: List[str] = []


def _fix(name: str):
    def register(fn: Callable[[], None]) -> Callable[[], None]:
        _FIXES[name] = fn
        return fn

    return register


# --------------------------------------------------------------------- import-time fixes
@_fix("torch_six")
def _torch_six() -> None:
    """fastreid/data/build.py:11 ``from torch._six import string_classes``:
    ``torch._six`` was removed in torch 2.0. Provide the one name fastreid uses."""
    if "torch._six" in sys.modules:
        return
    try:
        importlib.import_module("torch._six")  # torch < 2.0 still has it
    except ImportError:
        six = types.ModuleType("torch._six")
        six.string_classes = (str, bytes)
        sys.modules["torch._six"] = six
        torch._six = six


@_fix("collections_abc")
def _collections_abc() -> None:
    """fastreid/data/build.py:12 and fastreid/evaluation/testing.py:5
    ``from collections import Mapping``: the ABC aliases left ``collections`` in Python 3.10."""
    for name in ("Mapping", "MutableMapping", "Sequence", "Iterable"):
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))


@_fix("numpy_bool")
def _numpy_bool() -> None:
    """fastreid/evaluation/rank.py:69 ``np.bool``: removed in numpy 1.24, re-added in 2.0.
    Needed on numpy 1.24-1.26 only; a no-op on numpy >= 2."""
    if "bool" not in np.__dict__:
        np.bool = bool


# ------------------------------------------------------------------- run-time fixes
@_fix("dataloader_cuda")
def _dataloader_cuda() -> None:
    """fastreid/data/data_utils.py: ``DataLoaderX`` creates a CUDA stream in ``__init__``,
    moves every batch to ``cuda:local_rank`` in ``preload``/``__next__``, and its
    ``BackgroundGenerator.run`` calls ``torch.cuda.set_device`` inside a daemon thread; on a
    machine without CUDA the thread dies and training hangs silently. Use CUDA only when it
    is usable; otherwise batches stay on the CPU (models move inputs to their device)."""
    from fastreid.data import data_utils

    def bg_run(self):
        try:
            if cuda_usable():
                torch.cuda.set_device(self.local_rank)
            for item in self.generator:
                if self.exit_event.is_set():
                    break
                self.queue.put(item)
        finally:  # never leave the consumer blocked on queue.get()
            self.queue.put(None)

    def loader_init(self, local_rank, **kwargs):
        torch.utils.data.DataLoader.__init__(self, **kwargs)
        self.local_rank = local_rank
        self.stream = torch.cuda.Stream(local_rank) if cuda_usable() else None

    def preload(self):
        self.batch = next(self.iter, None)
        if self.batch is None or self.stream is None:
            return None
        with torch.cuda.stream(self.stream):
            for k in self.batch:
                if isinstance(self.batch[k], torch.Tensor):
                    self.batch[k] = self.batch[k].to(device=self.local_rank, non_blocking=True)

    def next_batch(self):
        if self.stream is not None:
            torch.cuda.current_stream().wait_stream(self.stream)
        batch = self.batch
        if batch is None:
            raise StopIteration
        self.preload()
        return batch

    # fastreid/data/build.py:95,156 hard-code pin_memory=True: harmless without CUDA, but noisy.
    warnings.filterwarnings("ignore", message=".*'pin_memory' argument is set as true", category=UserWarning)
    data_utils.BackgroundGenerator.run = bg_run
    data_utils.DataLoaderX.__init__ = loader_init
    data_utils.DataLoaderX.preload = preload
    data_utils.DataLoaderX.__next__ = next_batch


@_fix("contiguous_params_zero_grad")
def _contiguous_params_zero_grad() -> None:
    """fastreid/solver/build.py ``build_optimizer`` hands the optimizer flat buffers
    (``ContiguousParams``) whose ``.grad`` the model's parameter grads are views of. torch >= 2.0
    ``zero_grad()`` defaults to ``set_to_none=True``: it drops the buffers' grads, so every
    ``step()`` skips them, the model never changes, and the view grads grow without bound.
    Zero those grads in place instead."""
    import fastreid.solver
    from fastreid.engine import defaults
    from fastreid.solver import build

    original = build.build_optimizer

    def build_optimizer(cfg, model, contiguous=True):
        optimizer, param_wrapper = original(cfg, model, contiguous)
        if contiguous:
            zero_grad = optimizer.zero_grad

            def zero_grad_in_place(set_to_none: bool = False):
                zero_grad(set_to_none=set_to_none)

            optimizer.zero_grad = zero_grad_in_place
        return optimizer, param_wrapper

    build.build_optimizer = build_optimizer
    fastreid.solver.build_optimizer = build_optimizer
    defaults.build_optimizer = build_optimizer


@_fix("amp")
def _amp() -> None:
    """fastreid/engine/train_loop.py ``AMPTrainer``: asserts CUDA and uses the deprecated
    ``torch.cuda.amp`` API. Use ``torch.amp`` on the model's device; where mixed precision
    does not work (CPU) train in full precision and say so once."""
    from fastreid.engine import train_loop
    from fastreid.utils.params import ContiguousParams

    original_init = train_loop.AMPTrainer.__init__

    def amp_init(self, model, data_loader, optimizer, param_wrapper, grad_scaler=None):
        device_type = next(model.parameters()).device.type
        self.amp_enabled = device_type == "cuda"
        if grad_scaler is None:
            grad_scaler = torch.amp.GradScaler(device_type, enabled=self.amp_enabled)
        if not self.amp_enabled:
            logger.warning("SOLVER.AMP.ENABLED is set but the model is on %s: mixed precision "
                           "needs CUDA, training in float32.", device_type)
        original_init(self, model, data_loader, optimizer, param_wrapper, grad_scaler)
        self.amp_device_type = device_type

    def amp_run_step(self):
        assert self.model.training, "[AMPTrainer] model was changed to eval mode!"
        import time

        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start
        with torch.autocast(self.amp_device_type, enabled=self.amp_enabled):
            loss_dict = self.model(data)
            losses = sum(loss_dict.values())
        self.optimizer.zero_grad()
        self.grad_scaler.scale(losses).backward()
        self._write_metrics(loss_dict, data_time)
        self.grad_scaler.step(self.optimizer)
        self.grad_scaler.update()
        if isinstance(self.param_wrapper, ContiguousParams):
            self.param_wrapper.assert_buffer_is_valid()

    train_loop.AMPTrainer.__init__ = amp_init
    train_loop.AMPTrainer.run_step = amp_run_step


@_fix("jaccard_device")
def _jaccard_device() -> None:
    """fastreid/utils/compute_dist.py ``build_dist(metric="jaccard")`` (used by
    ``TEST.RERANK``) hard-codes ``search_option=0``: ``features.cuda()`` and
    ``faiss.StandardGpuResources``. Use the existing CPU branch (3) unless both CUDA and a
    GPU build of faiss are there."""
    import faiss
    from fastreid.utils import compute_dist

    original = compute_dist.compute_jaccard_distance

    def jaccard(features, k1=20, k2=6, search_option=0, fp16=False):
        gpu_ok = cuda_usable() and hasattr(faiss, "StandardGpuResources")
        if search_option < 3 and not gpu_ok:
            search_option = 3
        return original(features, k1=k1, k2=k2, search_option=search_option, fp16=fp16)

    compute_dist.compute_jaccard_distance = jaccard


@_fix("torch_load_numpy")
def _torch_load_numpy() -> None:
    """fastreid/utils/checkpoint.py:216 ``torch.load(f, map_location=cpu)``: torch >= 2.6
    loads with ``weights_only=True`` and refuses the numpy arrays and scalars that
    fastreid's ``_load_model`` explicitly supports. Allow exactly those numpy types."""
    if not hasattr(torch.serialization, "add_safe_globals"):
        return  # torch < 2.4 loads full pickles anyway
    core = getattr(np, "_core", None) or np.core
    safe = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    for code in "?bBhHiIlLqQefdgFD":
        safe.append(type(np.dtype(code)))
    torch.serialization.add_safe_globals(safe)


def _atomic_write(path: str, write) -> None:
    """Write through ``write(file)`` to a temporary file beside ``path``, fsync, then rename:
    a reader sees the old file or the new one, never a partial one."""
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


@_fix("atomic_checkpoints")
def _atomic_checkpoints() -> None:
    """fastreid/utils/checkpoint.py ``Checkpointer.save`` and ``tag_last_checkpoint`` write
    in place: a run killed mid-write leaves a truncated ``model_final.pth`` (or
    ``last_checkpoint``) and ``--resume`` fails on it. Write both atomically (temporary file,
    fsync, rename), so a kill at any moment leaves the last good checkpoint loadable."""
    from fastreid.utils import checkpoint

    def save(self, name: str, **kwargs):
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to {}".format(save_file))
        _atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str):
        _atomic_write(os.path.join(self.save_dir, "last_checkpoint"),
                      lambda f: f.write(last_filename_basename.encode()))

    checkpoint.Checkpointer.save = save
    checkpoint.Checkpointer.tag_last_checkpoint = tag_last_checkpoint


@_fix("writers_keep_late_scalars")
def _writers_keep_late_scalars() -> None:
    """fastreid/utils/events.py ``JSONWriter`` and ``TensorboardXWriter`` drop every scalar
    logged at an iteration they have already written. The writer hook writes at the last
    iteration before ``EvalHook.after_epoch`` logs the final evaluation at that same
    iteration, so the final Rank-1/mAP never reach metrics.json or TensorBoard. Remember the
    last written iteration per scalar instead of one for all."""
    import json
    from collections import defaultdict

    from fastreid.utils import events

    def json_write(self):
        storage = events.get_event_storage()
        written = self.__dict__.setdefault("_written", {})
        to_save = defaultdict(dict)
        for key, (value, iteration) in storage.latest_with_smoothing_hint(self._window_size).items():
            if iteration > written.get(key, -1):
                to_save[iteration][key] = value
                written[key] = iteration
        for iteration in sorted(to_save):
            self._file_handle.write(json.dumps(dict(to_save[iteration], iteration=iteration), sort_keys=True) + "\n")
        self._file_handle.flush()
        os.fsync(self._file_handle.fileno())

    original_tb_write = events.TensorboardXWriter.write

    def tb_write(self):
        storage = events.get_event_storage()
        written = self.__dict__.setdefault("_written", {})
        for key, (value, iteration) in storage.latest_with_smoothing_hint(self._window_size).items():
            if written.get(key, -1) < iteration <= self._last_write:  # late: the original would skip it
                self._writer.add_scalar(key, value, iteration)
            written[key] = max(written.get(key, -1), iteration)
        original_tb_write(self)

    events.JSONWriter.write = json_write
    events.TensorboardXWriter.write = tb_write


# how long a collective waits for the slowest rank: rank 0 alone clusters and matches each epoch
# while the others wait (SYSU-MM01 size, 34k features: 24 s on 2 CPU cores, 1.1 s on one H200;
# benchmarks/README.md), and saves checkpoints; 30 minutes leaves a wide margin for larger sets
DEFAULT_TIMEOUT_MINUTES = 30.0


def distributed_worker(local_rank, main_func, world_size, num_gpus_per_machine, machine_rank, dist_url, args,
                       timeout_minutes: float = DEFAULT_TIMEOUT_MINUTES):
    """fastreid's ``_distributed_worker``, on any device: NCCL and one GPU per process where
    CUDA is usable, gloo on CPUs otherwise, with a process-group timeout of ``timeout_minutes``.
    After ``main_func`` returns, the ranks meet once more and destroy the process group: a
    process that exits with gloo's threads still running aborts ("terminate called without an
    active exception"). (Module level, so that spawned processes can unpickle it; they import
    this module, and so get every fix, before running it.)"""
    import datetime

    import torch.distributed as dist
    from fastreid.utils import comm

    use_cuda = cuda_usable()
    global_rank = machine_rank * num_gpus_per_machine + local_rank
    try:
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method=dist_url,
                                world_size=world_size, rank=global_rank,
                                timeout=datetime.timedelta(minutes=timeout_minutes))
    except Exception:
        logger.error("Process group URL: %s", dist_url)
        raise
    comm.synchronize()
    if use_cuda:
        if num_gpus_per_machine > torch.cuda.device_count():
            raise RuntimeError(f"--num-gpus {num_gpus_per_machine} but only {torch.cuda.device_count()} GPUs here")
        torch.cuda.set_device(local_rank)
    assert comm._LOCAL_PROCESS_GROUP is None
    for machine in range(world_size // num_gpus_per_machine):
        ranks = list(range(machine * num_gpus_per_machine, (machine + 1) * num_gpus_per_machine))
        group = dist.new_group(ranks)
        if machine == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group
    main_func(*args)
    comm.synchronize()
    dist.destroy_process_group()
    comm._LOCAL_PROCESS_GROUP = None


@_fix("distributed_any_device")
def _distributed_any_device() -> None:
    """fastreid/engine/launch.py ``_distributed_worker`` asserts CUDA and hard-codes NCCL, and
    fastreid/engine/defaults.py wraps the model in ``DistributedDataParallel(device_ids=[rank])``,
    which fails for a CPU model. Use gloo and no device ids on CPUs, so that
    ``--num-gpus N`` runs N CPU processes where there is no GPU (and tests run anywhere)."""
    from fastreid.engine import defaults
    from torch.nn.parallel import DistributedDataParallel

    launch = sys.modules["fastreid.engine.launch"]  # the module: fastreid.engine.launch is also a function name

    def ddp(model, device_ids=None, **kwargs):
        on_cpu = next(model.parameters()).device.type == "cpu"
        return DistributedDataParallel(model, device_ids=None if on_cpu else device_ids, **kwargs)

    launch._distributed_worker = distributed_worker
    defaults.DistributedDataParallel = ddp


@_fix("rank_cython_build")
def _rank_cython_build() -> None:
    """fastreid/evaluation/reid_evaluation.py ``_compile_dependencies`` runs ``make`` in
    site-packages at evaluation time with whatever ``python3`` is on PATH, and calls
    ``sys.exit(1)`` on failure -- inside the training EvalHook, before any checkpoint is
    written. fastreid's rank.py already falls back to its pure-Python evaluator (identical
    numbers); use a prebuilt Cython module if one is importable, never compile at run time."""
    from fastreid.evaluation import reid_evaluation

    def compile_nothing(self):
        return None

    reid_evaluation.ReidEvaluator._compile_dependencies = compile_nothing
    warnings.filterwarnings("ignore", message="Cython rank evaluation", category=UserWarning)
    warnings.filterwarnings("ignore", message="Cython roc evaluation", category=UserWarning)


@_fix("to_tensor_numpy2")
def _to_tensor_numpy2() -> None:
    """fastreid/data/transforms/functional.py:38-46 ``to_tensor``: ``np.array(..., copy=False)``
    raises under numpy 2 for 16-bit (``I;16``, common for thermal images) and 1-bit PIL
    images, and ``torch.ByteStorage.from_buffer`` is deprecated. Same output, no copy flag."""
    from fastreid.data.transforms import functional, transforms

    original = functional.to_tensor
    dtypes = {"I": np.int32, "I;16": np.int16, "F": np.float32, "1": np.uint8}

    def to_tensor(pic):
        if not hasattr(pic, "mode"):
            return original(pic)  # numpy input: unchanged code path
        if pic.mode in dtypes:
            array = np.asarray(pic, dtype=dtypes[pic.mode])
            if pic.mode == "1":
                array = array * 255
        else:
            array = np.asarray(pic, dtype=np.uint8)
        img = torch.from_numpy(np.array(array, copy=True))
        if img.dim() == 2:
            img = img.unsqueeze(-1)
        img = img.permute(2, 0, 1).contiguous()
        return img.float() if img.dtype == torch.uint8 else img

    functional.to_tensor = to_tensor
    transforms.to_tensor = to_tensor


@_fix("metric_printer_same_iteration")
def _metric_printer_same_iteration() -> None:
    """fastreid/utils/events.py:219 ``CommonMetricPrinter.write``: without an iteration time
    (``IterationTimer`` skips its first 3 iterations) it estimates the ETA by dividing by the
    iterations since its last write, which is 0 when it writes twice at one iteration (after
    the epoch's last step, then after the epoch): a ``ZeroDivisionError`` ends any run with
    fewer than 4 iterations. Forget a last write made at the same iteration."""
    from fastreid.utils.events import CommonMetricPrinter, get_event_storage

    original = CommonMetricPrinter.write

    def write(self):
        if self._last_write is not None and self._last_write[0] == get_event_storage().iter:
            self._last_write = None
        original(self)

    CommonMetricPrinter.write = write


@_fix("backbone_weights")
def _backbone_weights() -> None:
    """fastreid/modeling/backbones/resnet.py:335-361 ``build_resnet_backbone`` (and
    mobilenet.py:174-190 ``build_mobilenetv2_backbone``) load ``MODEL.BACKBONE.PRETRAIN_PATH``
    with ``strict=False`` and only log what did not load: a fastreid checkpoint
    (``{"model": ...}`` with ``backbone.`` keys) loads no weight at all, and torchvision's
    ImageNet MobileNetV2 leaves the last convolution (``features.18`` there, ``conv`` here) at
    random, silently. Build the backbone without it, then load the file with
    :func:`fastreid_ext.modeling.load_backbone_weights` (both formats, torchvision's names; an
    error listing what does not fit, unless ``MODEL.BACKBONE.PRETRAIN_PARTIAL``)."""
    from fastreid.modeling.backbones import BACKBONE_REGISTRY, mobilenet, resnet

    from .modeling import load_backbone_weights

    def loading_checked(original):
        def build(cfg):
            backbone_cfg = cfg.MODEL.BACKBONE
            if not (backbone_cfg.PRETRAIN and backbone_cfg.PRETRAIN_PATH):
                return original(cfg)
            bare = cfg.clone()
            bare.defrost()
            bare.MODEL.BACKBONE.PRETRAIN = False
            model = original(bare)
            load_backbone_weights(model, backbone_cfg.PRETRAIN_PATH, backbone_cfg.get("PRETRAIN_PARTIAL", False))
            return model

        return build

    for module, name in ((resnet, "build_resnet_backbone"), (mobilenet, "build_mobilenetv2_backbone")):
        BACKBONE_REGISTRY._obj_map[name] = loading_checked(getattr(module, name))


@_fix("registry_iteration")
def _registry_iteration() -> None:
    """fastreid/utils/registry.py ``Registry`` offers only ``register`` and ``get``: listing
    what is registered (for "known: ..." messages and config checks) needs its private
    ``_obj_map``. Give it ``__iter__`` over (name, object) and ``__contains__``, as fvcore's
    later Registry has."""
    from fastreid.utils.registry import Registry

    Registry.__iter__ = lambda self: iter(list(self._obj_map.items()))
    Registry.__contains__ = lambda self, name: name in self._obj_map


@_fix("triplet_global_batch")
def _triplet_global_batch() -> None:
    """fastreid/modeling/losses/triplet_loss.py:87-92 has its all-gather commented out: with
    several processes, Baseline's triplet loss mines positives and negatives in each process's
    share of the batch only (with P identities split over W processes, P / W of them; with one
    identity per process, no negative at all: the loss is 0). Gather every process's
    embeddings and labels (differentiably: each process's gradient reaches the process that
    computed the embedding) so that the loss is the one of the global batch, as one process
    has it."""
    import torch
    import torch.distributed as dist
    import torch.distributed.nn.functional as dist_nn
    from fastreid.modeling.meta_arch import baseline
    from fastreid.utils import comm

    single_process_triplet = baseline.triplet_loss

    def triplet_loss(embedding, targets, margin, norm_feat, hard_mining):
        if comm.get_world_size() > 1:
            embedding = torch.cat(dist_nn.all_gather(embedding.contiguous()))
            gathered = [torch.empty_like(targets) for _ in range(dist.get_world_size())]
            dist.all_gather(gathered, targets.contiguous())
            targets = torch.cat(gathered)
        return single_process_triplet(embedding, targets, margin, norm_feat, hard_mining)

    baseline.triplet_loss = triplet_loss


def restart_data_iterator(trainer) -> None:
    """fastreid/engine/train_loop.py ``SimpleTrainer.__init__`` calls ``iter(data_loader)`` once,
    when the trainer is built, and ``run_step`` draws from that iterator for the whole run. Its
    workers prefetch ``prefetch_factor x num_workers`` batches ahead, drawn from the sampler
    as it was: after the sampler gets new labels, those batches still follow the old ones.
    Start a new iterator (the old one's workers shut down), so that every later batch is
    drawn from the sampler as it is now. A loader without workers draws each batch when it is
    asked for, so it is left as it is (a new iterator would also draw a base seed from torch's
    global generator and change every later random augmentation)."""
    inner = trainer._trainer  # fastreid's DefaultTrainer runs a SimpleTrainer / AMPTrainer
    if inner.data_loader.num_workers == 0:
        return
    inner._data_loader_iter = None  # drop the old iterator first: its workers exit before new ones start
    inner._data_loader_iter = iter(inner.data_loader)


def set_dataset_root(root: str) -> None:
    """fastreid/data/build.py reads the data-set root once, at import, from the
    ``FASTREID_DATASETS`` environment variable (``_root``); let ``DATASETS.ROOT`` set it."""
    from fastreid.data import build

    build._root = root
    os.environ["FASTREID_DATASETS"] = root


def apply() -> List[str]:
    """Apply every fix once (idempotent) and return the names applied in this process.

    Import-time fixes run before ``fastreid`` is imported; the rest patch fastreid modules.
    """
    if _APPLIED:
        return list(_APPLIED)
    skip = {s.strip() for s in os.environ.get("FASTREID_EXT_COMPAT_SKIP", "").split(",") if s.strip()}
    unknown = skip - set(_FIXES)
    if unknown:
        raise ValueError(f"FASTREID_EXT_COMPAT_SKIP names unknown fixes {sorted(unknown)}; "
                         f"known: {sorted(_FIXES)}")
    for name, fix in _FIXES.items():
        if name not in skip:
            fix()
            _APPLIED.append(name)
    return list(_APPLIED)


def known_fixes() -> List[str]:
    """Names of every compat fix, in the order they are applied."""
    return list(_FIXES)
