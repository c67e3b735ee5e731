"""CCA-ITQ gives the same codes whatever BLAS kernels the CPU picks (issue 18: the committed
Fashion-MNIST report's CCA-ITQ cells were off by up to 0.035 mAP on another machine)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from hashlearn.catalogue import make_method

# d close to n, as for 1280-d backbone features of 1,000 training rows: ill-conditioned.
SCRIPT = """
import hashlib, sys
import numpy as np
from hashlearn.catalogue import make_method
rng = np.random.default_rng(0)
y = np.arange(300) % 10
X = (rng.normal(size=(300, 280)) + 2.0 * np.eye(10, 280)[y]).astype(np.float32)
model = make_method("cca-itq", n_bits=32, random_state=0).fit(X, y)
print(hashlib.sha256(model.encode(X).tobytes()).hexdigest())
"""


def _codes_digest(**env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
    )
    return result.stdout.strip().splitlines()[-1]


def test_codes_do_not_depend_on_the_blas_kernels():
    # Nehalem's kernels (SSE4.2) run on every x86-64 CPU this suite runs on; the default is
    # the CPU's own (Haswell, SkylakeX, Zen...). With float32 covariances (before issue 18)
    # the two gave other codes for this problem on an AVX-512 machine.
    default = _codes_digest()
    assert _codes_digest(OPENBLAS_CORETYPE="Nehalem") == default


def test_correlations_beyond_the_label_rank_are_exactly_zero():
    rng = np.random.default_rng(1)
    y = np.arange(200) % 4
    X = rng.normal(size=(200, 30)) + 2.0 * np.eye(4, 30)[y]
    model = make_method("cca-itq", n_bits=12, random_state=0).fit(X, y)
    assert np.all(model.correlations_[:3] > 0.5)
    assert np.all(model.correlations_[3:] == 0.0)  # c − 1 = 3 non-zero correlations
