import pytest
import torch


@pytest.fixture
def one_thread():
    """For tests that run thousands of tiny ops (gradcheck, loops): one thread spares OpenMP's hand-offs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
