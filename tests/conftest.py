"""Fixtures shared by several test files."""

import pytest

from hashlearn.data import load_dataset


@pytest.fixture(scope="session")
def digits():
    """The embedded digits dataset with its default seeded split (read-only: do not mutate)."""
    return load_dataset("digits", progress=False)
