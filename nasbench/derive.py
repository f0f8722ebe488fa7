"""``nasbench derive``: a finished search's supernet turned into a genotype by DARTS-PT's projection.

The derivation rule is a searcher setting (``derive``). DARTS-PT's (``pt``) works after the search, in
epochs of its own, so it can be applied to a search that has finished. This module continues the finished
run, in a folder of its own, as if it had been started with the rule: the search's last checkpoint
(weights, alpha, optimisers, random state) is copied there with its record's configuration changed, and
the run is resumed. The projection epochs then run after the search's epochs, so the result equals that
of a run started with ``--set derive=pt``. The finished run is never changed. (The other rules,
``space`` and ``threshold``, derive a genotype at every epoch: a search is run with them.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nasbench.config import SECTIONS, RunConfig, apply_overrides, config_from_dict
from nasbench.errors import UserError
from nasbench.registry import SEARCHERS, SPACES
from nasbench.results import RunRecord
from nasbench.rundir import RunFolder, atomic_torch_save, load_checkpoint, save_record, writing

RULES = ("pt",)  # the rules that run after a search


def derived_folder(run_dir: Path, rule: str) -> Path:
    return run_dir.parent / f"{run_dir.name}-derive-{rule}"


def prepare(run_dir: Path, rule: str, settings: dict[str, Any], out: Path) -> RunConfig:
    """Check that ``run_dir`` holds a finished supernet search, and write the copy that continues it with
    ``rule`` (and ``settings``, e.g. ``pt_interval``) into ``out``; returns the copy's configuration."""
    if rule not in RULES:
        raise UserError(f"rule {rule!r} cannot be applied after a search; use one of {', '.join(RULES)}")
    source = RunFolder(run_dir)
    record = source.read_record()
    if record is None:
        raise UserError(f"{run_dir} holds no run record; name the folder of a finished search")
    if record.status != "completed":
        raise UserError(f"{run_dir} holds a {record.status} run; re-derive from a completed search")
    searcher_cls, space = SEARCHERS.get(record.searcher), SPACES.get(record.space)()
    cfg = config_from_dict(record.config, searcher_cls, space)
    if "derive" not in {f.name for f in dataclasses.fields(cfg.searcher_cfg)}:
        raise UserError(f"{record.searcher} has no supernet to derive from; re-derive a supernet searcher's run")
    if cfg.searcher_cfg.derive == "pt":
        raise UserError(f"{run_dir} was derived by DARTS-PT already: its supernet is projected")
    # apply_overrides checks every section's ranges and combinations
    sections = apply_overrides({name: cfg.section(name) for name in SECTIONS}, {**settings, "derive": rule})
    cfg = dataclasses.replace(
        cfg, train=sections["train"], space_cfg=sections["space"], searcher_cfg=sections["searcher"]
    )
    state = load_checkpoint(source)
    copy = RunRecord(**state["record"])
    copy.config = cfg.to_dict()
    copy.status, copy.genotype, copy.genotype_cells, copy.metrics = "interrupted", None, None, {}
    copy.finished_at = None
    state["record"] = copy.to_dict()
    with writing(out):
        out.mkdir(parents=True)
    atomic_torch_save(state, RunFolder(out).checkpoint_path)
    save_record(copy, RunFolder(out).record_path)
    return cfg


def rederive(
    run_dir: Path,
    rule: str,
    settings: dict[str, Any] | None = None,
    out: Path | None = None,
    progress: bool = False,
    echo: Callable[[str], None] = print,
) -> RunRecord:
    """Re-derive the finished search in ``run_dir`` by ``rule`` into ``out`` (default: a sibling folder
    named ``<run>-derive-<rule>``). Run again after an interruption, it resumes; once done, it changes
    nothing."""
    from nasbench.runner import run  # torch and the searchers only when a derivation runs

    run_dir, out = Path(run_dir), Path(out) if out else derived_folder(Path(run_dir), rule)
    begun = RunFolder(out).read_record()
    if begun is not None:
        cfg = config_from_dict(begun.config, SEARCHERS.get(begun.searcher), SPACES.get(begun.space)())
        echo(f"continuing the derivation in {out}")
    else:
        cfg = prepare(run_dir, rule, dict(settings or {}), out)
        echo(f"re-deriving {run_dir} by rule {rule!r} into {out}")
    return run(cfg, out, resume=True, progress=progress, echo=echo)
