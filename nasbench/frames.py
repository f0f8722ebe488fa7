"""Run records as pandas DataFrames (the API's ``load_runs``), and reports built from either paths or frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nasbench.report import GROUP_FIELDS, Report, build_report, flat_settings, load_records, report_of


def _scalars(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) or v is None}


def _transfer_columns(metrics: dict[str, Any]) -> dict[str, Any]:
    """``transfer.<dataset>.<key>`` for each scalar result of the search's cell on another data set."""
    transfer = metrics.get("transfer")
    if not isinstance(transfer, dict):
        return {}
    return {
        f"transfer.{dataset}.{k}": v
        for dataset, results in transfer.items()
        if isinstance(results, dict)
        for k, v in _scalars(results).items()
    }


def runs_frame(paths: list[str | Path], epochs: bool = False) -> pd.DataFrame:
    loaded, problems = load_records(paths)
    lines = []
    for path, record in loaded:
        who = {
            "path": str(path), "searcher": record.searcher, "space": record.space, "preset": record.preset,
            "seed": record.seed, "status": record.status, "genotype": record.genotype, "record": record,
        }  # fmt: skip
        settings = {k: str(v) if isinstance(v, tuple) else v for k, v in flat_settings(record).items()}
        if not epochs:
            lines.append({**who, **settings, **_scalars(record.metrics), **_transfer_columns(record.metrics)})
            continue
        for epoch in record.epochs:
            lines.append({**who, **_scalars(epoch)})
    frame = pd.DataFrame(lines)
    frame.attrs["problems"] = problems  # unreadable files under the paths, as the table names them
    return frame


def report_of_runs(runs: Any, group_by: Any, at_epoch: int | None = None) -> Report:
    """A Report from paths (str, Path or a list of them) or from a ``runs_frame`` (its ``record`` column)."""
    group = tuple(group_by) if group_by else GROUP_FIELDS
    if isinstance(runs, pd.DataFrame):
        by_path: dict[Path, Any] = {}
        for path, record in zip(runs["path"], runs["record"]):  # an epochs frame repeats each run
            by_path.setdefault(Path(path), record)
        return report_of(list(by_path.items()), list(runs.attrs.get("problems", [])), None, group, at_epoch)
    return build_report([runs] if isinstance(runs, (str, Path)) else list(runs), group_by=group, at_epoch=at_epoch)
