from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nasbench.config import RunConfig, resolve_config
from nasbench.registry import SEARCHERS, SPACES

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


def tiny_config(searcher: str, space: str, seed: int = 0, **sets: str) -> RunConfig:
    """The ``tiny`` preset of a space for a searcher, with optional ``--set`` overrides."""
    return resolve_config(
        SEARCHERS.get(searcher),
        SPACES.get(space)(),
        searcher=searcher,
        preset="tiny",
        seed=seed,
        device="cpu",
        data=None,
        train_flags={},
        set_pairs=dict(sets),
    )
