"""Ground truth of the NAS-Bench-201 cell space: every cell's test accuracy after the benchmark's training.

The table (Dong and Yang, "NAS-Bench-201", ICLR 2020; exported from the NATS-Bench topology search space
API, 200-epoch training) holds all 5**6 = 15,625 cells, each keyed by its string in the benchmark's
notation (``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``), with its test accuracy in % on CIFAR-10, CIFAR-100
and ImageNet16-120. A gzipped copy ships in the package; ``table(path)`` reads another copy
(``.csv`` or ``.csv.gz``) with the same columns.
"""

from __future__ import annotations

import csv
import gzip
import io
from functools import lru_cache
from pathlib import Path

from nasbench.data import builtin_path
from nasbench.errors import UserError

BUILTIN_TABLE = builtin_path("nats-tss") / "nats_tss_200ep.csv.gz"
ARCH_COLUMN = "ArchitectureString"
# data set -> column of test accuracy (%) after the benchmark's 200-epoch training
ACC_COLUMNS = {
    "cifar10": "CIFAR10TestAccuracy200Epochs",
    "cifar100": "CIFAR100TestAccuracy200Epochs",
    "imagenet16_120": "ImageNetTestAccuracy200Epochs",
}


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(encoding="utf-8", newline="")


@lru_cache(maxsize=4)
def table(path: Path = BUILTIN_TABLE) -> dict[str, dict[str, float]]:
    """Cell string -> {data set: test accuracy in %}, for every row of the table at ``path`` (cached)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"NAS-Bench-201 table {path} does not exist; leave it out to use the built-in copy")
    with _open_text(path) as f:
        reader = csv.DictReader(f)
        missing = {ARCH_COLUMN, *ACC_COLUMNS.values()} - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"NAS-Bench-201 table {path} lacks the columns {sorted(missing)}")
        rows = {row[ARCH_COLUMN]: {name: float(row[col]) for name, col in ACC_COLUMNS.items()} for row in reader}
    return rows


def lookup(arch: str, path: Path = BUILTIN_TABLE) -> dict[str, float]:
    """Test accuracies (%) of the cell ``arch`` (benchmark notation): keys ``cifar10``, ``cifar100``,
    ``imagenet16_120``."""
    try:
        return dict(table(path)[arch])
    except KeyError:
        raise UserError(
            f"cell {arch!r} is not in the NAS-Bench-201 table; write it as |op~0|+|op~0|op~1|+|op~0|op~1|op~2| "
            "with ops none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"
        ) from None
