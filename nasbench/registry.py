"""Name -> builder registries for searchers and spaces, fed by entry points.

The built-in searchers and spaces are declared in ``pyproject.toml`` under the entry-point groups
``nasbench.searchers`` and ``nasbench.spaces``, exactly as a third-party package declares its own;
``register`` adds one in-process (tests, notebooks).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from nasbench.errors import UserError


class Registry:
    """Maps names to builders. Entry points are listed at first use and loaded only when asked for."""

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._loaded: dict[str, Any] = {}
        self._entry_points: dict[str, Any] | None = None

    def _discover(self) -> dict[str, Any]:
        if self._entry_points is None:
            found: dict[str, Any] = {}
            for ep in entry_points(group=self.group):
                if ep.name in found:
                    raise RuntimeError(
                        f"two packages declare the {self.kind} {ep.name!r} in the entry-point group "
                        f"{self.group!r} ({found[ep.name].value} and {ep.value}); uninstall one"
                    )
                found[ep.name] = ep
            self._entry_points = found
        return self._entry_points

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator: ``@SEARCHERS.register("mine")``. A name already taken raises."""

        def add(builder: Any) -> Any:
            if name in self._loaded or name in self._discover():
                raise ValueError(f"the {self.kind} name {name!r} is already registered")
            self._loaded[name] = builder
            return builder

        return add

    def unregister(self, name: str) -> None:
        """Remove an in-process registration (entry points stay)."""
        self._loaded.pop(name, None)

    def names(self) -> list[str]:
        return sorted(set(self._discover()) | set(self._loaded))

    def get(self, name: str) -> Any:
        if name not in self._loaded:
            ep = self._discover().get(name)
            if ep is None:
                raise UserError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(self.names())}")
            self._loaded[name] = ep.load()
        return self._loaded[name]


SEARCHERS = Registry("searcher", "nasbench.searchers")
SPACES = Registry("space", "nasbench.spaces")
