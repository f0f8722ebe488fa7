"""RunRecord: one JSON file per run, rewritten at every epoch so an interruption loses at most one epoch."""

from __future__ import annotations

import json
import math
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
    genotype: str | None = None  # the returned genotype in the space's text form
    genotype_cells: dict[str, Any] | None = None  # the same as JSON: cell -> {"edges": [[op, src, dst]], "concat"}
    metrics: dict[str, Any] = field(default_factory=dict)
    started_at: str = ""
    finished_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        """Strict JSON: a NaN or infinite number is written as the string "NaN", "Infinity" or "-Infinity"
        (``load`` reads them back as floats), so that every JSON reader can parse a record."""
        return json.dumps(_finite_json(self.to_dict()), indent=1, default=_jsonable, allow_nan=False) + "\n"

    def save(self, path: Path) -> None:
        """Write atomically (``nasbench.rundir``), creating the folder; a crash mid-write leaves the old file."""
        from nasbench.rundir import save_record, writing

        with writing(Path(path)):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        save_record(self, Path(path))

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        path = Path(path)
        try:
            raw = _from_finite_json(json.loads(path.read_text()))
        except FileNotFoundError:
            raise UserError(f"no run record at {path}") from None
        except IsADirectoryError:
            raise UserError(f"{path} is a folder, not a run record") from None
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


NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _finite_json(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def _from_finite_json(value: Any) -> Any:
    if isinstance(value, str) and value in NON_FINITE:
        return NON_FINITE[value]
    if isinstance(value, dict):
        return {k: _from_finite_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_finite_json(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return _finite_json(value.tolist())
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
