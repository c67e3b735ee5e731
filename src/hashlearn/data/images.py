"""Lazy image sources and the usual transforms for pretrained backbones (PIL + NumPy).

Image datasets such as NUS-WIDE (~200,000 photographs; ~30 GB as 224 px float arrays) cannot
be held in memory. Their splits carry an :class:`ImageFiles` sequence instead of an array:
``len(images)`` is the number of items, ``images[i]`` opens and decodes file ``i`` to a uint8
``(H, W, 3)`` RGB array (before any transform), and ``images.subset(idx)`` is another lazy
sequence. Decoding happens where the item is used — e.g. in ``torch.utils.data`` workers
through :class:`hashlearn.deep.image_data.ImageDataset`.

:class:`ImageTransform` is the preprocessing of the popular deep hashing code
(DeepHash-pytorch ``utils/tools.py``, ``image_transform``): resize the shorter side to 256,
crop 224 (random crop and horizontal flip for training, centre crop otherwise), scale to
[0, 1] and standardise with the ImageNet mean and standard deviation. It is written with PIL and
NumPy, so it needs neither torchvision nor torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hashlearn._io import HashlearnFileError
from hashlearn._validation import HashlearnInputError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - pillow is a dependency
        raise HashlearnInputError("decoding image files needs Pillow: pip install pillow") from None
    return Image


def to_rgb(img: Any) -> Any:
    """A PIL image as 8-bit RGB: 16-bit and 32-bit grayscale scaled to 0..255 by their
    range (PIL's own conversion clips them, turning most 16-bit pixels white), palette and
    alpha images composited on black, CMYK and others by PIL's conversion."""
    Image = _pil()
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr).convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def open_rgb(path: str | os.PathLike) -> Any:
    """Open an image file as a PIL RGB image (any mode converted by :func:`to_rgb`), with an
    error naming the file when it does not decode: missing, truncated, not an image, or a
    decompression bomb (more pixels than ``PIL.Image.MAX_IMAGE_PIXELS``, which is raised to an
    error from PIL's warning: such a file can exhaust memory)."""
    import warnings

    Image = _pil()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.load()
                return to_rgb(img)
    except FileNotFoundError:
        raise HashlearnFileError(f"image file {path} does not exist.") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise HashlearnFileError(
            f"image file {path} is too large to decode safely ({exc}); shrink it, or raise "
            "PIL.Image.MAX_IMAGE_PIXELS if you trust it."
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise HashlearnFileError(f"cannot decode image file {path}: {exc}") from None


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """The image at ``path`` as a uint8 ``(H, W, 3)`` RGB array."""
    return np.asarray(open_rgb(path), dtype=np.uint8)


class ImageFiles(Sequence):
    """A lazy sequence of image files: ``images[i]`` decodes file ``i`` on demand.

    Args:
        paths: absolute file paths (as strings), one per item.
        origins: optional, per item, where it was listed (``"train.txt, line 12"``): named in
            decoding errors, so a bad entry is found in its list file.

    Indexing with an int returns the uint8 ``(H, W, 3)`` array; with a slice or an index
    array it returns another :class:`ImageFiles` (nothing decoded). :meth:`load` decodes a
    batch into one array when all its images have the same size.
    """

    def __init__(self, paths: Sequence[str], origins: Sequence[str] | None = None):
        self.paths = np.asarray(list(paths), dtype=object)
        self.origins = None if origins is None else np.asarray(list(origins), dtype=object)
        if self.origins is not None and len(self.origins) != len(self.paths):
            raise HashlearnInputError(
                f"{len(self.origins)} origins for {len(self.paths)} image files; give one each."
            )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, (int, np.integer)):
            try:
                return decode_image(self.paths[index])
            except HashlearnFileError as exc:
                if self.origins is None:
                    raise
                raise HashlearnFileError(f"{exc} (listed in {self.origins[index]})") from None
        return self.subset(index)

    def subset(self, indices: Any) -> ImageFiles:
        """The items at ``indices`` (a slice, or int/bool index array), still lazy."""
        origins = None if self.origins is None else self.origins[indices]
        return ImageFiles(self.paths[indices], origins)

    def path(self, index: int) -> str:
        return str(self.paths[index])

    def load(self, indices: Any = None) -> np.ndarray:
        """Decode the items at ``indices`` (default: all) into one uint8 ``(n, H, W, 3)`` array."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices).reshape(-1)
        arrays = [self[int(i)] for i in idx]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise HashlearnInputError(
                f"these {len(arrays)} images have different sizes ({sorted(shapes)[:3]}...); "
                "resize them with an ImageTransform (or hashlearn.deep.image_data.ImageDataset)."
            )
        if not arrays:
            return np.empty((0, 0, 0, 3), dtype=np.uint8)
        return np.stack(arrays)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise HashlearnInputError(
            f"a lazy sequence of {len(self)} image files is not converted to an array "
            "implicitly (it may not fit in memory); call .load() for a small batch, or use "
            "hashlearn.deep.image_data.ImageDataset with a DataLoader."
        )

    def __repr__(self) -> str:
        first = f", first={self.paths[0]!r}" if len(self) else ""
        return f"ImageFiles(n={len(self)}{first})"


def find_images(folder: Path) -> list[Path]:
    """Image files (by suffix, case-insensitive) under ``folder``, recursively, sorted."""
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


class ImageTransform:
    """Resize, crop, scale and normalise one image to a float32 ``(3, crop, crop)`` array.

    Args:
        resize: length of the shorter side after resizing (bilinear); ``None`` to skip.
        crop: side of the square crop; ``None`` to skip (then images must share a size to be
            batched).
        train: random crop and random horizontal flip (training augmentation); otherwise a
            centre crop.
        mean, std: per-channel normalisation after scaling to [0, 1]; ``None`` leaves pixels in
            [0, 1] (hashlearn's pretrained backbones normalise inside the network).

    ``transform(image, rng)`` takes a uint8 ``(H, W)`` or ``(H, W, 3)`` array (or a PIL image)
    and a ``numpy.random.Generator`` (used only when ``train``). Defaults are DeepHash-pytorch's
    (resize 256, crop 224, ImageNet statistics).
    """

    def __init__(
        self,
        resize: int | None = 256,
        crop: int | None = 224,
        *,
        train: bool = False,
        mean: Sequence[float] | None = IMAGENET_MEAN,
        std: Sequence[float] | None = IMAGENET_STD,
    ):
        self.resize = resize
        self.crop = crop
        self.train = train
        self.mean = mean
        self.std = std

    def describe(self) -> dict[str, Any]:
        """JSON-able parameters (part of feature-cache keys)."""
        return {
            "resize": self.resize,
            "crop": self.crop,
            "train": self.train,
            "mean": None if self.mean is None else list(self.mean),
            "std": None if self.std is None else list(self.std),
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.describe().items())
        return f"ImageTransform({args})"

    def __call__(self, image: Any, rng: np.random.Generator | None = None) -> np.ndarray:
        Image = _pil()
        img = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        img = img.convert("RGB")
        if self.resize is not None:
            # torchvision's Resize(int) rule: shorter side = resize, longer side truncated.
            w, h = img.size
            short, long = (w, h) if w <= h else (h, w)
            new_long = int(self.resize * long / short)
            size = (self.resize, new_long) if w <= h else (new_long, self.resize)
            img = img.resize(size, Image.BILINEAR)
        arr = np.asarray(img, dtype=np.uint8)
        if self.crop is not None:
            arr = self._crop(arr, rng)
        if self.train:
            if rng is None:
                raise HashlearnInputError("a training transform needs a random generator rng.")
            if rng.random() < 0.5:
                arr = arr[:, ::-1]
        out = arr.astype(np.float32).transpose(2, 0, 1) / np.float32(255.0)
        if self.mean is not None:
            out -= np.asarray(self.mean, dtype=np.float32)[:, None, None]
        if self.std is not None:
            out /= np.asarray(self.std, dtype=np.float32)[:, None, None]
        return np.ascontiguousarray(out)

    def _crop(self, arr: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        c = int(self.crop)
        h, w = arr.shape[:2]
        if h < c or w < c:
            raise HashlearnInputError(
                f"cannot crop {c}x{c} from a {h}x{w} image; resize to at least {c} first."
            )
        if self.train:
            if rng is None:
                raise HashlearnInputError("a training transform needs a random generator rng.")
            top, left = int(rng.integers(0, h - c + 1)), int(rng.integers(0, w - c + 1))
        else:
            top, left = int(round((h - c) / 2.0)), int(round((w - c) / 2.0))
        return arr[top : top + c, left : left + c]
