from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import settings

from nasbench.testing import tiny_config  # noqa: F401 (the tests' shorthand)

# The default run draws the same examples every time, so that a red CI run is a change's doing; the slow
# property tests and `--hypothesis-profile explore` draw new ones, to find what those fixed examples miss.
settings.register_profile("fixed", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("fixed")

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _few_threads():
    """Tests use toy shapes, where extra threads cost more than they give."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"{SHARED_DATA} is not present")
    return SHARED_DATA


def saved_bytes(fn) -> int:
    """Bytes of the distinct storages autograd keeps for the backward pass of ``fn()``."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())
