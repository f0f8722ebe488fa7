"""RunRecord: one JSON file per run, rewritten at every epoch so an interruption loses at most one epoch."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nasbench.errors import UserError

SCHEMA = 1
STATUSES = ("running", "completed", "failed", "interrupted")


@dataclass
class RunRecord:
    searcher: str
    space: str
    seed: int
    preset: str
    config: dict[str, Any]
    provenance: dict[str, Any]
    data: str  # which data set the run used, in words
    schema: int = SCHEMA
    status: str = "running"
    error: str | None = None
    epochs: list[dict[str, Any]] = field(default_factory=list)
    genotype: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path) -> None:
        """Write atomically: a crash mid-write leaves the previous version, never half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1, default=_jsonable) + "\n")
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        path = Path(path)
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"no run record at {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"run record {path} is not valid JSON ({exc}); the file is damaged") from None
        if not isinstance(raw, dict) or "schema" not in raw:
            raise UserError(f"{path} is not a nasbench run record (no 'schema' field)")
        if raw["schema"] != SCHEMA:
            raise UserError(
                f"run record {path} has schema version {raw['schema']}; this nasbench reads version {SCHEMA}"
            )
        try:
            return cls(**raw)
        except TypeError as exc:
            raise UserError(f"run record {path} does not match schema {SCHEMA}: {exc}") from None


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
