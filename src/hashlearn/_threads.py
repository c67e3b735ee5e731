"""BLAS thread control for estimator fits.

Hashing fits are dominated by tall-skinny products (n × d by d × k) and small k × k
factorisations. Multi-threaded OpenBLAS splits these badly and its threads busy-wait when the
cores are shared: measured on our 2-core machine, an H²Q fit on digits at 48 bits took 3.3 s
with the default threads and 0.08 s with one, and a 60k × 64-bit SSAH fit 55 s against 14 s.
One thread also makes float results independent of the machine's core count. The parallel
parts of hashlearn (search, metrics) use numba threads instead, which this does not touch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from threadpoolctl import threadpool_limits

F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_BLAS_THREADS = 1


def limit_blas_threads(method: F) -> F:
    """Run an estimator method with at most ``self.blas_threads`` BLAS threads.

    Estimators without a ``blas_threads`` parameter use :data:`DEFAULT_BLAS_THREADS`;
    ``blas_threads=None`` leaves the BLAS library's own setting alone. The value is checked
    with the estimator's other parameters (``_parameter_constraints``) when ``fit`` starts, so
    put ``@_fit_context`` above this decorator.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        threads = getattr(self, "blas_threads", DEFAULT_BLAS_THREADS)
        if threads is None:
            return method(self, *args, **kwargs)
        with threadpool_limits(limits=int(threads), user_api="blas"):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
