"""Fixtures shared by the core tests."""

import pytest

from tests.core.c1_support import one_thread


@pytest.fixture
def one_torch_thread():
    """Torch on one thread for the test (restored after): tiny tensors gain nothing from a second
    thread, and on the shared 2-core machine two OpenMP threads mostly wait for each other.

    Use it per module with `pytestmark = pytest.mark.usefixtures("one_torch_thread")`.
    """
    with one_thread():
        yield
