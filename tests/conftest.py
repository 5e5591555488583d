"""Shared test fixtures. `mnist_dir`: the real MNIST folder, or a skip when there is none."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The folder named by $MINPRUNE_DATA (the four MNIST .gz files); skips the test if unset.

    Session-scoped, so it reads the variable before any test's monkeypatch changes it.
    """
    folder = os.environ.get("MINPRUNE_DATA", "")
    if not folder:
        pytest.skip("MINPRUNE_DATA is not set; point it at the four MNIST .gz files to run this")
    return Path(folder)


@pytest.fixture
def assert_warned_at():
    """``assert_warned_at(warnings, __file__)``: each warning points at the caller's file (its
    ``stacklevel`` is right). Not checked under mutmut (``make mutation``), whose trampolines put
    one more frame between the caller and minprune."""
    def check(warnings, file):
        if "MUTANT_UNDER_TEST" not in os.environ:
            assert [warning.filename for warning in warnings] == [file] * len(warnings)
    return check
