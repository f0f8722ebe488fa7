"""Data sets: CIFAR-10 python batches, the PTB text corpus, and the built-in slices of both."""

from pathlib import Path

BUILTIN_ROOT = Path(__file__).parent / "builtin"


def builtin_path(name: str) -> Path:
    """Folder of a built-in data set shipped inside the package (``cifar10-mini``, ``ptb-mini``)."""
    return BUILTIN_ROOT / name
