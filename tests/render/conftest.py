"""Render and loss tests run torch on one thread: their tensors are small, and on a shared
2-core machine a second intra-op thread mostly waits for the other processes."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
