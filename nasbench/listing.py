"""``nasbench list``: every registered searcher and space with its settings (types, defaults, ranges), each space's
presets, published genotypes and evaluation data sets. A plugin that fails to import is a warning, and the rest are
listed."""

from __future__ import annotations

import dataclasses
import sys
import typing
from typing import Any

from nasbench.config import TrainConfig
from nasbench.registry import SEARCHERS, SPACES, Registry


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind).replace("typing.", "")


def own_settings(config_cls: type) -> tuple[list[str], type | None]:
    """``name: type = default`` for the fields a config class adds or changes over its parent config class,
    and that parent (None: the class has none, and all its fields are shown)."""
    hints = typing.get_type_hints(config_cls)
    parents = [c for c in config_cls.__mro__[1:] if dataclasses.is_dataclass(c)]
    parent = parents[0] if parents else None
    inherited = {f.name: f.default for f in dataclasses.fields(parent)} if parent else {}
    lines = []
    for f in dataclasses.fields(config_cls):
        if f.name in inherited and inherited[f.name] == f.default:
            continue
        bound = getattr(config_cls, "bounds", {}).get(f.name)
        lines.append(f"{f.name}: {_type_name(hints[f.name])} = {f.default!r}" + (f"  ({bound})" if bound else ""))
    return lines, parent


def _load(registry: Registry, name: str) -> Any | None:
    try:
        return registry.get(name)
    except Exception as exc:  # a plugin whose import fails must not hide the others
        print(
            f"warning: the {registry.kind} {name!r} could not be loaded ({type(exc).__name__}: {exc})", file=sys.stderr
        )
        return None


def cmd_list() -> int:
    print("the search protocol every searcher shares (--set KEY=VALUE; a preset changes some of these):")
    for line in own_settings(TrainConfig)[0]:
        print(f"      {line}")
    loaded = {name: _load(SEARCHERS, name) for name in SEARCHERS.names()}
    owners = {cls.config_cls: name for name, cls in loaded.items() if cls is not None}
    print("searchers, each with its own settings (--set KEY=VALUE):")
    for name, cls in loaded.items():
        if cls is None:
            continue
        print(f"  {name:12s} {cls.summary}")
        lines, parent = own_settings(cls.config_cls)
        for line in lines:
            print(f"      {line}")
        if parent is not None:
            print(f"      (and the settings of {owners.get(parent, parent.__name__)})")
    print("spaces (settings: --set space.KEY=VALUE):")
    for name in SPACES.names():
        cls = _load(SPACES, name)
        if cls is None:
            continue
        print(f"  {name:12s} {cls.summary}")
        print(f"      presets: {', '.join(cls.presets)}")
        if cls.published:
            print(f"      published genotypes: {', '.join(cls.published)}")
        tasks = cls().eval_tasks()
        if tasks:
            named = [f"{dataset} ({', '.join(task.presets)})" for dataset, task in tasks.items()]
            print(f"      nasbench eval --dataset (presets): {'; '.join(named)}")
        for line in own_settings(cls.config_cls)[0]:
            print(f"      {line}")
    return 0
