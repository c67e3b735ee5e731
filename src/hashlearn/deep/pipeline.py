"""One ``torch.utils.data`` pipeline for everything a network is fed: training batches and
encoding, of in-memory arrays and lazy image files alike.

* :func:`image_transforms` names the authors' preprocessing: ``h2q`` (resize 256, centre crop
  224 for training and evaluation; ``Lucas-Schwengber/h2q``, its data loaders), ``deephash``
  (resize 256, random crop 224 and horizontal flip for training, centre crop 224 for
  evaluation; ``swuxyj/DeepHash-pytorch`` ``utils/tools.py`` ``image_transform``, which the
  HSWD authors' ``python/`` code reuses) and ``none`` (the images as they are: a small-image
  stand-in is not upsampled unless its transform asks).
* :class:`EpochBatchSampler` draws epoch ``e``'s batches from ``seed`` and ``e`` alone
  (``torch.randperm`` of a CPU generator), shards them over DDP ranks and drops the last
  incomplete batch, so a run resumed at an epoch boundary sees exactly the batches of an
  uninterrupted one, whatever the number of workers.
* :class:`ArrayBatches` serves in-memory arrays (features, or images without a transform) a
  whole batch per fetch; :class:`~hashlearn.deep.image_data.ImageDataset` decodes and
  transforms one image per fetch, in worker processes (``num_workers``), seeded per item and
  epoch.
* :func:`device_batches` moves batches to the device (pinned memory and non-blocking copies
  on CUDA) and turns an error raised in a worker (an image that does not decode) or a worker
  that died into a one-line error naming the file; the run's checkpoints are untouched, so
  ``resume=True`` continues once the file is fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

import hashlearn.deep.distributed as dd
from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError, check_choice
from hashlearn.data.images import ImageTransform
from hashlearn.deep.config import TRANSFORMS, TrainConfig, input_kind
from hashlearn.deep.image_data import ImageDataset
from hashlearn.deep.inputs import input_spec, lazy_image_spec

__all__ = [
    "ArrayBatches",
    "EpochBatchSampler",
    "device_batches",
    "encode_inputs",
    "image_transforms",
    "make_loader",
    "resolve_transform",
    "training_input_spec",
]


def resolve_transform(name: str, lazy: bool) -> str:
    """The transform ``name`` stands for: ``auto`` is ``h2q``'s preprocessing on lazy image
    files (which differ in size) and ``none`` on in-memory arrays (our choice: a small-image
    stand-in keeps its size)."""
    check_choice(name, TRANSFORMS, "transform")
    if name == "auto":
        return "h2q" if lazy else "none"
    return name


def image_transforms(name: str) -> tuple[ImageTransform | None, ImageTransform | None]:
    """``(training transform, evaluation transform)`` of a named transform (None: ``none``).

    Pixels stay in [0, 1] (no mean/std): hashlearn's pretrained backbones apply the ImageNet
    normalisation themselves."""
    check_choice(name, TRANSFORMS[1:], "transform")
    if name == "none":
        return None, None
    evaluation = ImageTransform(256, 224, train=False, mean=None, std=None)
    if name == "h2q":
        return evaluation, evaluation
    return ImageTransform(256, 224, train=True, mean=None, std=None), evaluation


def training_input_spec(
    config: TrainConfig,
    X: Any,
    *,
    lazy: bool,
    features_transform: ImageTransform | None = None,
) -> dict:
    """The input spec of a run (stored in ``config.json``): feature rows, images as they are,
    or images prepared by ``config.transform`` (recorded, with its training variant, so that
    encoding prepares images as evaluation did). ``features_transform``: ``X`` are frozen
    features of lazy images prepared by that transform."""
    name = resolve_transform(config.transform, lazy or features_transform is not None)
    if features_transform is not None:
        return lazy_image_spec(features_transform, name=name)
    if name != "none" and input_kind(config.backbone) == "images":
        train_tf, eval_tf = image_transforms(name)
        return lazy_image_spec(eval_tf, train_tf, name=name)
    if lazy:
        raise HashlearnInputError(
            "lazy image files differ in size and need a transform (`transform='h2q'` or "
            "'deephash'); 'none' works only for in-memory arrays."
        )
    spec = input_spec(config.backbone, X)
    if config.backbone not in ("cnn", "mlp"):
        # Pretrained networks take the arrays at their own size (runs from before this key
        # resized inside the network to 224 px; hashlearn.deep.hasher.load_run keeps that).
        spec["native_size"] = True
    return spec


class EpochBatchSampler(Sampler):
    """Index batches of one epoch: a seeded permutation, this rank's shard, full batches.

    Args:
        n_items: training items.
        batch_size: items per batch (per process when distributed).
        seed: the run's seed; epoch ``e`` uses ``torch.Generator().manual_seed(seed * 100_003
            + e)``.
        ctx: the process context (:func:`hashlearn.deep.distributed.current`).

    Call :meth:`set_epoch` (optionally with the epoch's item subset, e.g. ADSH's sampled
    items) before iterating an epoch.
    """

    def __init__(self, n_items: int, batch_size: int, seed: int, ctx: dd.Context):
        self.n_items, self.batch_size, self.seed, self.ctx = n_items, batch_size, seed, ctx
        self.epoch, self.items = 1, None

    def set_epoch(self, epoch: int, items: torch.Tensor | None = None) -> None:
        self.epoch, self.items = int(epoch), items

    def order(self) -> torch.Tensor:
        """This rank's items of the epoch, in order (CPU int64)."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.items is None:
            order = torch.randperm(self.n_items, generator=generator)
        else:
            order = self.items[torch.randperm(len(self.items), generator=generator)]
        return dd.shard(order, self.ctx)

    def __len__(self) -> int:
        n = self.n_items if self.items is None else len(self.items)
        return max((n // max(self.ctx.world_size, 1)) // self.batch_size, 1)

    def __iter__(self) -> Iterator[list[int]]:
        # Incomplete last batches are dropped (the permutation changes every epoch, so every
        # item is still seen): a tiny batch would give one noisy step the weight of a full one.
        order = self.order()
        for b in range(len(self)):
            batch = order[b * self.batch_size : (b + 1) * self.batch_size]
            if len(batch) < 2:
                raise HashlearnInputError("need at least 2 training items per process.")
            yield batch.tolist()


#: ``convert(rows, kind, mean, std) -> float tensor``: :func:`hashlearn.deep.features.to_batch`.
Convert = Callable[[np.ndarray, str, float, float], torch.Tensor]


class ArrayBatches(Dataset):
    """An in-memory array served one batch per fetch: ``(float tensor, int64 indices)``.

    ``kind`` is ``"images"`` (uint8 ``(n, H, W[, C])``, scaled to [0, 1] and standardised by the
    scalars ``mean`` / ``std``) or ``"features"`` (rows standardised the same way), converted
    by ``convert`` (:func:`hashlearn.deep.features.to_batch`, the one conversion of raw inputs
    that training and encoding share)."""

    def __init__(self, X: np.ndarray, kind: str, mean: float, std: float, convert: Convert) -> None:
        self.X, self.kind, self.mean, self.std = X, kind, float(mean), float(std)
        self.convert = convert

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        x, idx = self.__getitems__([int(index)])
        return x[0], int(idx[0])

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        rows = self.X[idx]
        return self.convert(rows, self.kind, self.mean, self.std), torch.from_numpy(idx)


def _batch_as_is(batch: Any) -> Any:
    return batch


def _stack_images(items: list[tuple[torch.Tensor, torch.Tensor, int]]) -> tuple:
    return torch.stack([x for x, _, _ in items]), torch.tensor([i for _, _, i in items])


def make_loader(
    inputs: Any,
    *,
    kind: str = "images",
    mean: float = 0.0,
    std: float = 1.0,
    transform: ImageTransform | None = None,
    batch_sampler: Sampler | None = None,
    batch_size: int = 1024,
    num_workers: int = 0,
    seed: int = 0,
    device: torch.device | None = None,
    convert: Convert | None = None,
) -> DataLoader:
    """A DataLoader over ``inputs`` yielding ``(batch, indices)``.

    With a ``transform`` (or lazy image files) the images are decoded and transformed one by
    one by :class:`~hashlearn.deep.image_data.ImageDataset` in ``num_workers`` processes;
    otherwise :class:`ArrayBatches` slices whole batches in this process (workers would only
    add copies), converted by ``convert`` (:func:`hashlearn.deep.features.to_batch`). Without
    ``batch_sampler`` the items come in order, ``batch_size`` at a time. Memory is pinned when
    ``device`` is CUDA."""
    per_item = transform is not None or not isinstance(inputs, np.ndarray)
    if per_item:
        if transform is None:
            raise HashlearnInputError(
                "lazy image files differ in size and need a transform (`transform='h2q'` or "
                "'deephash'); 'none' works only for in-memory arrays."
            )
        dataset: Dataset = ImageDataset(inputs, None, transform, seed=seed)
        collate, workers = _stack_images, num_workers
    else:
        if convert is None:
            raise TypeError("make_loader needs `convert` (features.to_batch) for arrays.")
        dataset, collate = ArrayBatches(inputs, kind, mean, std, convert), _batch_as_is
        workers = 0
    if batch_sampler is None:
        starts = range(0, len(inputs), batch_size)
        batch_sampler = [list(range(s, min(s + batch_size, len(inputs)))) for s in starts]
    return DataLoader(
        dataset,
        batch_sampler=batch_sampler,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=device is not None and device.type == "cuda",
        persistent_workers=False,
        # Its own generator: creating the iterator never draws from torch's global one.
        generator=torch.Generator().manual_seed(seed),
    )


def _one_line(exc: BaseException) -> str:
    """The original message of an exception re-raised from a DataLoader worker (whose text is
    'Caught X in DataLoader worker ... Original Traceback ...')."""
    text = str(exc)
    if "Original Traceback" not in text:
        return text
    last = [line for line in text.strip().splitlines() if line.strip()][-1]
    head, _, message = last.partition(": ")
    return message if message and " " not in head else last


def as_channels_last(x: torch.Tensor) -> torch.Tensor:
    """Image batches ``(n, C, H, W)`` in channels-last memory (a no-op when they are already;
    other tensors unchanged): the layout CUDA's tensor cores and oneDNN's CPU convolutions run
    fastest in (measured on the CPU, one thread, batches of 32 at 224 px: EfficientNet-Lite0
    1.8x in inference and 1.5x in training, AlexNet 1.2x)."""
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def device_batches(
    loader: DataLoader, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(batch on device, CPU indices)`` of ``loader``, with worker failures as one-line
    :class:`HashlearnFileError` / :class:`HashlearnInputError` naming the file."""
    iterator = iter(loader)
    non_blocking = device.type == "cuda"
    try:
        while True:
            try:
                x, idx = next(iterator)
            except StopIteration:
                return
            except (HashlearnFileError, HashlearnInputError) as exc:
                raise type(exc)(_one_line(exc)) from None
            except RuntimeError as exc:
                if "DataLoader worker" not in str(exc):
                    raise
                raise HashlearnFileError(
                    f"an image loading worker stopped ({_one_line(exc).splitlines()[0]}); the "
                    "checkpoints of finished epochs are intact: fix the cause (memory, a "
                    "damaged file) and continue with `resume=True`, or use fewer `num_workers`."
                ) from None
            yield as_channels_last(x.to(device, non_blocking=non_blocking)), idx
    finally:
        # Stop the workers now, not when the iterator is collected: forked workers hold the
        # parent's open files, the run directory's lock among them.
        shutdown = getattr(iterator, "_shutdown_workers", None)
        if shutdown is not None:
            shutdown()


# Inference batches (our choice, measured with EfficientNet-Lite0 at 224 px on 2 CPU threads:
# 39 / 32 / 24 / 21 images/s at batches of 32 / 64 / 128 / 256, as activations outgrow the
# caches): a pixel budget of 32 such images per batch on the CPU, 8x that on CUDA, at most
# MAX_INFERENCE_BATCH items; feature rows always MAX_INFERENCE_BATCH.
INFERENCE_PIXELS = {"cpu": 32 * 224 * 224, "cuda": 256 * 224 * 224}
MAX_INFERENCE_BATCH = 1024


def inference_batch_size(
    inputs: Any, device: torch.device, kind: str = "images", transform: ImageTransform | None = None
) -> int:
    """Items per batch when a model only runs forward (:data:`INFERENCE_PIXELS`): transformed
    images count at their crop (or resize) size, in-memory images at their own size."""
    if kind != "images" and transform is None:
        return MAX_INFERENCE_BATCH
    if transform is not None:
        side = transform.crop or transform.resize or 224
        pixels = side * side
    else:
        shape = getattr(inputs, "shape", ())  # (never np.shape: it would read lazy files)
        pixels = int(np.prod(shape[1:3])) if len(shape) >= 3 else 224 * 224
    budget = INFERENCE_PIXELS["cuda" if device.type == "cuda" else "cpu"]
    return int(min(MAX_INFERENCE_BATCH, max(1, budget // max(pixels, 1))))


@contextmanager
def _eval_mode(module: Any) -> Iterator[None]:
    """Run the block with ``module`` (an ``nn.Module``, else nothing happens) in eval mode,
    restoring its train/eval mode afterwards."""
    if not isinstance(module, torch.nn.Module):
        yield
        return
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


@torch.inference_mode()
def encode_inputs(
    fn: Callable[[torch.Tensor], torch.Tensor],
    inputs: Any,
    *,
    device: torch.device,
    kind: str = "images",
    mean: float = 0.0,
    std: float = 1.0,
    transform: ImageTransform | None = None,
    batch_size: int | None = None,
    num_workers: int = 0,
    out_features: int | None = None,
    progress: bool = False,
    desc: str = "encoding",
    convert: Convert | None = None,
) -> np.ndarray:
    """``fn`` over every input, in order, under ``torch.inference_mode``: float32 ``(n, out)``.

    One loader (batches of :func:`inference_batch_size` unless ``batch_size`` is given),
    results written into one preallocated array (no per-batch list and concatenation).
    ``fn``'s module (``fn`` itself, or the module ``fn`` is a bound method of) runs in eval
    mode and gets its train/eval mode back afterwards."""
    if len(inputs) == 0:
        raise HashlearnInputError("cannot run the model on an empty input array.")
    if batch_size is None:
        batch_size = inference_batch_size(inputs, device, kind, transform)
    owner = fn if isinstance(fn, torch.nn.Module) else getattr(fn, "__self__", None)
    with _eval_mode(owner):
        loader = make_loader(
            inputs,
            kind=kind,
            mean=mean,
            std=std,
            transform=transform,
            batch_size=batch_size,
            num_workers=num_workers,
            device=device,
            convert=convert,
        )
        out: np.ndarray | None = None
        start = 0
        batches = tqdm(device_batches(loader, device), total=len(loader), desc=desc, leave=False,
                       disable=not progress)  # fmt: skip
        for x, _ in batches:
            z = fn(x).float().cpu().numpy()
            if out is None:
                out = np.empty((len(inputs), out_features or z.shape[1]), dtype=np.float32)
            out[start : start + len(z)] = z
            start += len(z)
        return out
