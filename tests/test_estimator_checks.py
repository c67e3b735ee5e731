"""Every registered method passes scikit-learn's estimator checks (with small parameters)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

from hashlearn._validation import HashlearnParameterError
from hashlearn.base import needs_labels
from hashlearn.catalogue import available_methods, make_method

# scikit-learn's checks fit on tiny data (down to 1 feature and a few samples): keep codes short
# and the kernel methods' anchors few, so that every method applies and the checks stay fast.
KERNEL = {"n_bits": 4, "n_anchors": 8, "max_iter": 2}
SMALL = {
    "ssah": KERNEL,
    "ssah-svd": KERNEL,
    "sdh": KERNEL,
    "fsdh": KERNEL,
    "ksh": KERNEL,
    "cca-itq": {"n_bits": 2, "max_iter": 5},
    "itq": {"n_bits": 2, "n_iter": 5},
    "lsh": {"n_bits": 4},
}


def small(name: str):
    default = {"n_bits": 2, "max_iter": 5} if name.startswith("h2q") else {"n_bits": 2}
    return make_method(name, **SMALL.get(name, default))


ESTIMATORS = [small(name) for name in available_methods()]


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=available_methods())
def test_parameter_constraints_cover_every_parameter(estimator):
    check_param_validation(type(estimator).__name__, estimator)


@pytest.mark.parametrize("name", available_methods())
def test_bad_parameter_is_a_hashlearn_error_naming_it(name):
    rng = np.random.RandomState(0)
    X, y = rng.uniform(size=(30, 6)), np.arange(30) % 3
    model = small(name).set_params(n_bits=0)
    with pytest.raises(
        HashlearnParameterError, match=f"'n_bits' parameter of {type(model).__name__}"
    ):
        model.fit(X, y)


def test_needs_labels_reads_the_scikit_learn_tag():
    supervised = {name for name in available_methods() if needs_labels(small(name))}
    assert supervised == {"ssah", "ssah-svd", "sdh", "fsdh", "ksh", "cca-itq"}
    assert needs_labels(type(small("ssah"))) and not needs_labels(type(small("itq")))
