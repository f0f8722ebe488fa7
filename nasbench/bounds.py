"""Valid ranges of settings, declared beside each config class and checked before anything is built.

A config class lists its numeric settings' ranges in a ``bounds`` class variable, e.g.
``bounds = {"w_lr": POSITIVE, "w_momentum": FRACTION}``; ``check_bounds`` names every setting out of range,
with its range, in one message. A setting left ``None`` (meaning "the method's default") is not checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nasbench.errors import UserError


@dataclass(frozen=True)
class Bounds:
    low: float | None = None
    high: float | None = None
    low_open: bool = False  # low itself excluded
    high_open: bool = False  # high itself excluded

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def __str__(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {high}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


POSITIVE = Bounds(0.0, low_open=True)  # learning rates, temperatures, clips, scales
NON_NEGATIVE = Bounds(0.0)  # weight decays, loss weights, counts where 0 means "off" or "all"
AT_LEAST_ONE = Bounds(1.0)  # counts: epochs, batch sizes, cells, channels, windows
FRACTION = Bounds(0.0, 1.0, high_open=True)  # momenta, betas, dropout probabilities
OPEN_UNIT = Bounds(0.0, 1.0, low_open=True, high_open=True)  # a split's share, a threshold
SEED = Bounds(0.0, 2.0**32 - 1)  # what numpy's and torch's generators accept


def out_of_bounds(cfg: Any, bounds: Mapping[str, Bounds], section: str = "") -> list[str]:
    """``section.name=value (must be RANGE)`` for every field of ``cfg`` outside its declared range."""
    prefix = f"{section}." if section else ""
    return [
        f"{prefix}{name}={value} (must be {rule})"
        for name, rule in bounds.items()
        if (value := getattr(cfg, name)) is not None and not rule.holds(float(value))
    ]


def check_bounds(sections: Mapping[str, Any]) -> None:
    """Raise one ``UserError`` naming every setting of every section (name -> config) outside its range."""
    bad = [line for name, cfg in sections.items() for line in out_of_bounds(cfg, getattr(cfg, "bounds", {}), name)]
    if bad:
        raise UserError("settings out of range: " + "; ".join(bad))


def check_order(cfg: Any, low: str, high: str, why: str) -> None:
    """``cfg.low <= cfg.high`` (a schedule's end and start, say), else one ``UserError`` naming both values and
    ``why``; a ``low`` left ``None`` is not checked."""
    low_value, high_value = getattr(cfg, low), getattr(cfg, high)
    if low_value is not None and low_value > high_value:
        raise UserError(f"{low}={low_value} is above {high}={high_value}: {why}")
