"""Shared test settings.

torch runs with one intra-op thread in tests: on a small shared machine two threads per process
oversubscribe the cores and make tiny networks tens of times slower.
"""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
