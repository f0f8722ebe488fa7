"""nasbench: a pluggable benchmark suite for neural architecture search.

The Python API (everything the command line does, from a notebook):

- ``search(searcher, space, preset=..., seed=..., settings={...})`` runs a search and returns its ``RunRecord``;
- ``evaluate(genotype_or_record, ...)`` trains a genotype from scratch and tests it;
- ``load_runs(paths)`` is a ``pandas.DataFrame`` of run records, one row per run (``epochs=True``: one row
  per run and epoch), with each record in its ``record`` column;
- ``table(runs, fmt=...)`` and ``plots(runs, out_dir)`` render paths or a (filtered) ``load_runs`` frame.

Settings are Python values (``{"arch_lr": 3e-3, "early_stop": True}``), checked against each setting's type.
Nothing heavy is imported until a function is called.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from nasbench.results import RunRecord

__version__ = "0.1.0"
__all__ = ["search", "evaluate", "load_runs", "table", "plots", "__version__"]


def search(
    searcher: str,
    space: str,
    *,
    preset: str | None = None,
    seed: int = 0,
    epochs: int | None = None,
    settings: Mapping[str, Any] | None = None,
    device: str = "auto",
    data: str | None = None,
    out: str | Path = "runs",
    threads: int | None = None,
    progress: bool = False,
    log_to: Sequence[str] = (),
) -> RunRecord:
    """Search as ``nasbench run`` does, in a new run folder under ``out``; returns the record.
    ``log_to``: live loggers, as ``--log`` (``"tensorboard"``, ``"wandb"``)."""
    from nasbench.cli_flags import apply_threads
    from nasbench.config import resolve_config
    from nasbench.registry import SEARCHERS, SPACES
    from nasbench.rundir import create_unique_dir, timestamped_name
    from nasbench.runner import default_preset, resolve_device, run

    apply_threads(threads)
    preset = default_preset(preset, resolve_device(device))
    cfg = resolve_config(
        SEARCHERS.get(searcher),
        SPACES.get(space)(),
        searcher=searcher,
        preset=preset,
        seed=seed,
        device=device,
        data=data,
        train_flags={"epochs": epochs} if epochs is not None else {},
        set_pairs=dict(settings or {}),
    )
    run_dir = create_unique_dir(Path(out) / space, timestamped_name(searcher, preset, f"seed{seed}"))
    return run(cfg, run_dir, progress=progress, echo=lambda line: None, log_to=log_to)


def evaluate(
    genotype: str | Path,
    *,
    space: str | None = None,
    dataset: str | None = None,
    preset: str | None = None,
    seed: int = 0,
    epochs: int | None = None,
    settings: Mapping[str, Any] | None = None,
    device: str = "auto",
    data: str | None = None,
    out: str | Path = "runs",
    progress: bool = False,
) -> RunRecord:
    """Train and test a genotype as ``nasbench eval`` does: a published name (``"DARTS_V2"``), genotype text,
    or a completed search's ``record.json`` path (whose record gains the result); on the space's own data set,
    or on ``dataset`` (``"imagenet"``, ``"wikitext2"``: a transfer)."""
    from nasbench.eval.command import evaluate_genotype

    return evaluate_genotype(
        genotype, space, dataset, preset, seed, epochs, dict(settings or {}), device, data, Path(out), progress
    )


def load_runs(paths: str | Path | Sequence[str | Path], *, epochs: bool = False) -> pandas.DataFrame:
    """Run records under ``paths`` as a DataFrame, one row per run: identity, status, the returned genotype,
    every setting (``train.*``, ``space.*``, ``searcher.*``) and every final metric, the ``record`` itself and
    its ``path``. With ``epochs``, one row per run and epoch instead, with each epoch's scalar values."""
    from nasbench.frames import runs_frame

    return runs_frame([paths] if isinstance(paths, (str, Path)) else list(paths), epochs)


def table(
    runs: Any,
    fmt: str = "md",
    columns: Sequence[str] | None = None,
    group_by: Sequence[str] | None = None,
    at_epoch: int | None = None,
) -> str:
    """The paper-style tables (``md``, ``tex`` or ``csv``) of paths or of a ``load_runs`` frame; with
    ``at_epoch``, of the searches as if each had stopped after that epoch (``nasbench table --at-epoch``)."""
    from nasbench.frames import report_of_runs
    from nasbench.tables import render

    return render(report_of_runs(runs, group_by, at_epoch), fmt, columns)


def plots(runs: Any, out_dir: str | Path, seed: int | None = None) -> list[Path]:
    """The PNG plots of paths or of a ``load_runs`` frame, saved in ``out_dir``; returns their paths."""
    from nasbench.figures import save_plots
    from nasbench.frames import report_of_runs

    return save_plots(report_of_runs(runs, None), Path(out_dir), seed=seed)
