"""``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes).

Always available (it ships inside scikit-learn), so it is the zero-install default for
examples, tests and smoke runs. Features are the 64 pixels divided by 16 (the data's maximum),
images are the same pixels rescaled to 0–255 uint8.

Protocol ``hashing`` (default) mirrors the deep-hashing protocol at small scale: 20 query
images per class (200), the database is every other image (1,597) and 50 training images per
class (500) are drawn from the database.
"""

from __future__ import annotations

import os

import numpy as np

from hashlearn.data.base import bytes_sha256
from hashlearn.data.registry import Source, register_dataset
from hashlearn.data.splits import Protocol

HASHING = Protocol(
    name="hashing",
    description=(
        "stratified: query = 20 per class, database = all other items, "
        "train = 50 per class drawn from the database"
    ),
    query_per_class=20,
    train_per_class=50,
)


def _locate(data_dir: str | os.PathLike | None = None) -> str:
    import sklearn

    return f"bundled with scikit-learn {sklearn.__version__}"


@register_dataset(
    "digits",
    description="scikit-learn handwritten digits, 8x8 grey images (bundled, no download)",
    n_classes=10,
    n_items=1797,
    item_shape=(8, 8),
    protocols=[HASHING],
    locate=_locate,
)
def read_digits(
    *, data_dir: str | os.PathLike | None = None, download: bool = True, progress: bool = True
) -> Source:
    """The whole digits set as one pool (``data_dir``/``download``/``progress`` are unused)."""
    import sklearn
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.asarray(bunch.images, dtype=np.float64)  # values 0..16
    return Source(
        X=(pixels.reshape(len(pixels), -1) / 16.0).astype(np.float32),
        y=np.asarray(bunch.target, dtype=np.int64),
        images=np.round(pixels * (255.0 / 16.0)).astype(np.uint8),
        class_names=[str(c) for c in range(10)],
        files=[
            {
                "loader": "sklearn.datasets.load_digits",
                "scikit_learn_version": sklearn.__version__,
                "pixels_sha256": bytes_sha256(pixels.astype("<f8")),
            }
        ],
    )
