"""The grid of a sweep as pure functions: seed lists, the cartesian expansion, and each cell's folder.

A cell is one run: a searcher, a space, a preset, a seed, an optional epoch count and ``--set`` values
(the sweep's own and one value of each ``--grid`` key). Its folder under the sweep's output is a
function of the cell alone, so running the same sweep again finds the same folders.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from nasbench.errors import UserError

MAX_SLUG = 80  # longer settings parts of a folder name are replaced by a hash
_SAFE = re.compile(r"[A-Za-z0-9._=+,-]*")


@dataclass(frozen=True)
class Cell:
    searcher: str
    space: str
    preset: str
    seed: int
    epochs: int | None = None
    settings: tuple[tuple[str, str], ...] = ()  # sorted (key, value) pairs, as ``--set key=value``

    @property
    def folder(self) -> str:
        """``SPACE/SEARCHER-PRESET[-eEPOCHS][-SETTINGS]-seedK``, relative to the sweep's output folder."""
        parts = [self.searcher, self.preset]
        if self.epochs is not None:
            parts.append(f"e{self.epochs}")
        slug = settings_slug(self.settings)
        if slug:
            parts.append(slug)
        return f"{self.space}/{'-'.join(parts)}-seed{self.seed}"

    @property
    def label(self) -> str:
        extra = "".join(f" {k}={v}" for k, v in self.settings)
        epochs = f" epochs={self.epochs}" if self.epochs is not None else ""
        return f"{self.space} {self.searcher} ({self.preset}{epochs}{extra}) seed {self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "searcher": self.searcher,
            "space": self.space,
            "preset": self.preset,
            "seed": self.seed,
            "epochs": self.epochs,
            "settings": dict(self.settings),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Cell:
        return cls(
            raw["searcher"],
            raw["space"],
            raw["preset"],
            int(raw["seed"]),
            raw.get("epochs"),
            tuple(sorted((str(k), str(v)) for k, v in raw.get("settings", {}).items())),
        )


def settings_slug(settings: Sequence[tuple[str, str]]) -> str:
    """``key=value`` pairs joined by ``,``; a short hash of them when that is too long or holds characters
    other than letters, digits and ``._=+,-``."""
    text = ",".join(f"{k}={v}" for k, v in settings)
    if len(text) <= MAX_SLUG and _SAFE.fullmatch(text):
        return text
    return "h" + hashlib.sha1(text.encode()).hexdigest()[:10]


def parse_seeds(text: str) -> list[int]:
    """``0-4`` -> [0, 1, 2, 3, 4]; ``0,2,7`` -> [0, 2, 7]; ranges and lists combine (``0-2,9``)."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise UserError(f"--seeds {text!r}: write seeds as 0-4, 0,2,7 or 0-2,9")
        low, high = int(match[1]), int(match[2] if match[2] is not None else match[1])
        if high < low:
            raise UserError(f"--seeds {text!r}: the range {part} runs backwards")
        seeds.extend(range(low, high + 1))
    if len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: a seed is listed twice")
    return seeds


def parse_names(text: str, what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UserError(f"--{what} {text!r}: give at least one name, comma-separated")
    if len(set(names)) != len(names):
        raise UserError(f"--{what} {text!r}: a name is listed twice")
    return names


def parse_grid(items: Iterable[str]) -> list[tuple[str, list[str]]]:
    """``--grid key=v1,v2`` items -> [(key, [v1, v2]), ...], in the order given."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        options = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not options:
            raise UserError(f"--grid {item!r}: expected key=v1,v2,... e.g. --grid arch_lr=3e-4,3e-3")
        if key.strip() in [k for k, _ in grid]:
            raise UserError(f"--grid {key.strip()!r} is given twice")
        grid.append((key.strip(), options))
    return grid


def expand(
    searchers: Sequence[str],
    spaces: Sequence[str],
    seeds: Sequence[int],
    preset: str,
    epochs: int | None,
    settings: dict[str, str],
    grid: Sequence[tuple[str, Sequence[str]]],
) -> list[Cell]:
    """Every cell of seeds x spaces x searchers x grid values, in that order: with seeds outermost, a sweep
    stopped early has every method on its first seeds. A ``--grid`` key also given with ``--set`` is an error."""
    clash = sorted(set(settings) & {k for k, _ in grid})
    if clash:
        raise UserError(f"{', '.join(clash)}: given both with --set and with --grid; keep one")
    combos = list(itertools.product(*[[(k, v) for v in values] for k, values in grid])) or [()]
    cells = []
    for seed in seeds:
        for space in spaces:
            for searcher in searchers:
                for combo in combos:
                    pairs = tuple(sorted({**settings, **dict(combo)}.items()))
                    cells.append(Cell(searcher, space, preset, seed, epochs, pairs))
    return cells
