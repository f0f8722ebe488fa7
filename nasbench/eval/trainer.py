"""The evaluation loop shared by every space: train a genotype's discrete network from scratch, then test.

A space's ``EvalTask`` (``nasbench.eval.cnn``, ``nasbench.eval.rnn``) holds the network, data, optimiser
and protocol; this module runs its epochs with progress, cost accounting, a record and a checkpoint per
epoch, resume, and the final test, in a run folder handled as a search's is (``nasbench.rundir``). The
test split is read here and only here: a search never sees it.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from itertools import islice
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from tqdm import tqdm

from nasbench.config import _field_types, check_sections, coerce_value
from nasbench.errors import UserError
from nasbench.genotype import Genotype
from nasbench.metrics.cost import PhaseMeter, current_rss_kib
from nasbench.provenance import provenance, rng_state, seed_all
from nasbench.results import RunRecord
from nasbench.rundir import (
    EVAL_KIND,
    RECORD,
    NonFiniteLoss,
    RunFolder,
    create_unique_dir,
    load_state,
    now_iso,
    open_folder,
    reopen,
    save_record,
    timestamped_name,
    track_status,
)
from nasbench.runner import SYNC_EVERY
from nasbench.searchers.base import batch_lr
from nasbench.spaces.base import Batch, Network
from nasbench.threads import rebalance

ATTACH_WAIT_S = 60.0  # how long adding the test score waits for a process that holds the search folder


def train_steps(
    net: Network,
    opt: torch.optim.Optimizer,
    batches: Iterable[Batch],
    n: int,
    grad_clip: float,
    desc: str,
    progress: bool,
) -> float:
    """``n`` optimiser steps on ``net.loss``, each with the gradient norm clipped at ``grad_clip`` and the lr
    scaled by the batch's ``lr_scale`` (PTB windows); a loss checked every ``SYNC_EVERY`` steps. Returns the
    mean training loss."""
    total: torch.Tensor | None = None
    bar = tqdm(total=n, desc=desc, disable=not progress, leave=False)
    for i, batch in enumerate(islice(batches, n)):
        rebalance()  # a run started or ended beside this one changes its share of the cores
        with batch_lr(opt, batch):
            opt.zero_grad(set_to_none=True)
            loss = net.loss(batch)
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
            opt.step()
        total = loss.detach() if total is None else total + loss.detach()
        if (i + 1) % SYNC_EVERY == 0 or i + 1 == n:
            mean = float(total) / (i + 1)
            if not math.isfinite(mean):
                raise NonFiniteLoss(f"the training loss became non-finite by step {i + 1} ({desc})")
            bar.set_postfix(train_loss=f"{mean:.3f}")
        bar.update(1)
    bar.close()
    return float(total) / n if total is not None else float("nan")


class EvalTask(ABC):
    """One space's evaluation protocol. Built after ``seed_all``, so its network's initialisation is seeded."""

    space: ClassVar[str]
    dataset: ClassVar[str]  # the name ``nasbench eval --dataset`` takes: "cifar10", "imagenet", "ptb", ...
    label: ClassVar[str]  # the data set, as papers name it
    metric: ClassVar[str]  # the record key of the result: "test_acc" (higher is better) or "test_ppl"
    config_cls: ClassVar[type]  # its fields are ``--set`` keys; must have ``epochs`` and ``check()``
    presets: ClassVar[dict[str, dict[str, Any]]]  # "paper", "small" (CPU), "tiny" (tests)
    # where a method's paper evaluates its own cells otherwise: searcher or published genotype -> preset
    method_presets: ClassVar[dict[str, str]] = {}
    # a transfer data set's results in the search tables: record keys, their header, "pct" or "ppl"
    table_keys: ClassVar[tuple[str, ...]] = ()
    table_header: ClassVar[str] = ""
    score_kind: ClassVar[str] = ""
    description: str  # the data, in words

    @abstractmethod
    def __init__(
        self, genotype: Genotype, cfg: Any, device: torch.device, seed: int, path: str | None, download: bool
    ) -> None:
        """Load the data (``path=None``: the built-in slice) and build the network and optimiser."""

    @abstractmethod
    def size(self) -> dict[str, Any]:
        """``params_m`` (without auxiliary heads) and, where it applies, ``mult_adds_m`` of one input."""

    def size_note(self, size: dict[str, Any]) -> str | None:
        """A line on what the size means for the protocol (ImageNet's mobile setting), or None."""
        return None

    @abstractmethod
    def train_epoch(self, epoch: int, progress: bool) -> dict[str, Any]:
        """One epoch; returns ``train_loss`` and the epoch's schedule values. Raises ``NonFiniteLoss``."""

    @abstractmethod
    def test(self) -> dict[str, float]:
        """``metric`` and ``test_loss`` of the final network on the test split."""

    @abstractmethod
    def state_dict(self) -> dict[str, Any]: ...

    @abstractmethod
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def resolve_eval_config(task: type[EvalTask], preset: str, epochs: int | None, set_pairs: dict[str, Any]) -> Any:
    """Paper defaults <- preset <- ``--epochs`` <- ``--set key=value`` (fields of the task's config)."""
    if preset not in task.presets:
        raise UserError(f"unknown eval preset {preset!r}; presets: {', '.join(task.presets)}")
    values = dict(task.presets[preset], **({"epochs": epochs} if epochs is not None else {}))
    types = _field_types(task.config_cls)
    for key, text in set_pairs.items():
        name = key.removeprefix("eval.")
        if name not in types:
            raise UserError(f"--set {key}: unknown key {name!r}; allowed keys: {', '.join(sorted(types))}")
        values[name] = coerce_value(text, types[name], key)
    cfg = task.config_cls(**values)
    check_sections({"eval": cfg})
    return cfg


def eval_run_dir(out: Path, space: str, name: str, preset: str, seed: int) -> Path:
    return create_unique_dir(Path(out) / space, timestamped_name(f"{EVAL_KIND}-{name}", preset, f"seed{seed}"))


def new_eval_record(
    space: str,
    cfg: Any,
    genotype_text: str,
    source: str,
    search_record: str | None,
    preset: str,
    seed: int,
    device: Any,
) -> RunRecord:
    """An evaluation's record: ``source`` says where the genotype came from (a name, text or a record)."""
    return RunRecord(
        searcher=EVAL_KIND,
        space=space,
        seed=seed,
        preset=preset,
        config={"eval": dataclasses.asdict(cfg), "source": source, "search_record": search_record},
        provenance=provenance(device),
        data="",
        genotype=genotype_text,
        started_at=now_iso(),
    )


def evaluate(
    record: RunRecord,
    build_task: Callable[[], EvalTask],
    epochs: int,
    run_dir: Path,
    device: torch.device,
    *,
    resume: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> RunRecord:
    """Train and test; ``record.json`` and ``checkpoint.pt`` are written into ``run_dir`` every epoch."""
    with open_folder(run_dir, f"nasbench eval {record.genotype}", "evaluation", resume) as opened:
        if opened.finished:
            assert opened.existing is not None
            echo(f"{run_dir} holds a completed evaluation; nothing was changed")
            return opened.existing
        folder = opened.folder
        log = folder.log_to(progress, echo)
        seed_all(record.seed)
        baseline_kib = current_rss_kib()
        task = build_task()
        start = 0
        if opened.resume:
            state, record, start = reopen(folder, log, epochs)
            load_state(task.load_state_dict, state["task"], folder)
        else:
            record.data = task.description
            record.metrics.update(task.size())
        save_record(record, folder.record_path)
        log(f"data: {task.description}\nrun folder: {run_dir}\nparams {record.metrics['params_m']:.3f}M (no aux head)")
        note = task.size_note(record.metrics)
        if note:
            log(note)
        running = {"epoch": start + 1}
        hours = 1 / 3600 * record.provenance["device_count"]
        with track_status(record, folder, lambda: running["epoch"], "Lower the learning rate (--set w_lr=...)."):
            for epoch in range(start, epochs):
                running["epoch"] = epoch + 1
                with PhaseMeter(device, baseline_kib) as meter:
                    stats = {"epoch": epoch + 1, **task.train_epoch(epoch, progress)}
                stats.update(seconds=meter.seconds, peak_mem_mib=meter.peak_mem_mib)
                record.epochs.append(stats)
                record.metrics.update(
                    eval_device_hours=sum(e["seconds"] for e in record.epochs) * hours,
                    eval_peak_mem_mib=max(e["peak_mem_mib"] for e in record.epochs),
                    peak_mem_method=meter.method,
                )
                folder.save(record, {"epoch": epoch, "task": task.state_dict(), "rng": rng_state()}, epoch + 1)
                shown = " | ".join(f"{k} {v:.4g}" for k, v in stats.items() if k.endswith(("loss", "ppl", "acc")))
                log(f"eval epoch {epoch + 1}/{epochs} | {shown} | {meter.seconds:.1f}s")
            running["epoch"] = epochs + 1  # the test
            with PhaseMeter(device, baseline_kib) as meter:
                record.metrics.update(task.test())
            record.metrics["eval_device_hours"] = record.metrics.get("eval_device_hours", 0.0) + meter.seconds * hours
            record.metrics["eval_peak_mem_mib"] = max(record.metrics.get("eval_peak_mem_mib", 0.0), meter.peak_mem_mib)
    return record


def attach_to_search_record(
    path: Path, evaluation: RunRecord, metric: str, eval_dir: Path, transfer: str | None = None
) -> None:
    """The search record gains the test metric, the evaluation's cost and size, and where its record is; under
    the search folder's lock, so that no other process rewrites the record meanwhile. An evaluation on another
    data set (``transfer``, its name) goes to ``metrics["transfer"][transfer]`` with its preset and record,
    beside the search's own test score."""
    with RunFolder(Path(path).parent).lock("nasbench eval: adding the test score", wait_s=ATTACH_WAIT_S):
        search = RunRecord.load(path)
        m = evaluation.metrics
        if transfer:
            search.metrics.setdefault("transfer", {})[transfer] = {
                **m,
                "eval_preset": evaluation.preset,
                "eval_record": str(eval_dir / RECORD),
            }
        else:
            search.metrics.update({k: m[k] for k in (metric, "eval_device_hours", "eval_peak_mem_mib")})
            search.metrics.update({f"eval_{k}": m[k] for k in ("params_m", "mult_adds_m") if k in m})
            search.metrics.update(eval_preset=evaluation.preset, eval_record=str(eval_dir / RECORD))
        save_record(search, Path(path))
