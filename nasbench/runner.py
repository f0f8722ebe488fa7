"""run(config) -> RunRecord: epochs, schedules, checkpoints, resume, progress, and the run record."""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from nasbench.config import AUTOCAST_DTYPES, RunConfig
from nasbench.data.streams import SearchData, capped_steps
from nasbench.errors import UserError
from nasbench.genotype import Genotype
from nasbench.metrics.collapse import CollapseSettings, early_stop_decision, epoch_collapse_stats
from nasbench.metrics.cost import PhaseMeter, current_rss_kib
from nasbench.provenance import provenance, rng_state, seed_all, set_rng_state
from nasbench.registry import SEARCHERS, SPACES
from nasbench.results import RunRecord
from nasbench.searchers.base import Searcher
from nasbench.spaces.base import SearchSpace

RECORD = "record.json"
CHECKPOINT = "checkpoint.pt"
LOG = "log.txt"
SYNC_EVERY = 10  # steps between host syncs (progress bar, NaN check)


class NonFiniteLoss(RuntimeError):
    pass


def search_autocast(setting: str, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The mixed-precision context of ``train.autocast`` (see ``TrainConfig``) on ``device``."""
    dtype = AUTOCAST_DTYPES[setting]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=getattr(torch, dtype))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA device is available here; use --device cpu or auto")
    if name != "cpu" and not name.startswith("cuda"):
        raise UserError(f"--device {name!r}: use cpu, cuda, cuda:N or auto")
    return torch.device(name)


def new_run_dir(out: Path, cfg: RunConfig) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(out) / cfg.space / f"{cfg.searcher}-{cfg.preset}-seed{cfg.seed}-{stamp}"
    run_dir, n = base, 1
    while run_dir.exists():
        run_dir, n = base.with_name(f"{base.name}-{n}"), n + 1
    return run_dir


def find_resumable(out: Path, searcher: str, space: str, preset: str, seed: int) -> Path:
    """The newest run of this searcher/space/preset/seed under ``out`` that did not complete."""
    candidates = sorted((Path(out) / space).glob(f"{searcher}-{preset}-seed{seed}-*/{CHECKPOINT}"))
    for checkpoint in reversed(candidates):
        record = checkpoint.parent / RECORD
        if not record.exists() or RunRecord.load(record).status != "completed":
            return checkpoint.parent
    raise UserError(
        f"nothing to resume: no unfinished {searcher}/{space} run (preset {preset}, seed {seed}) with a "
        f"checkpoint under {out}; pass --resume RUN_DIR to name one"
    )


@dataclass
class Run:
    """Everything one search run holds while it runs."""

    cfg: RunConfig
    run_dir: Path
    space: SearchSpace
    data: SearchData
    searcher: Searcher
    record: RunRecord
    device: torch.device
    log: Callable[[str], None]
    progress: bool
    baseline_kib: int | None = None  # resident memory before data and model were built

    def save(self, epoch: int) -> None:
        """Record first, then checkpoint (atomic each); the checkpoint carries its own copy of the record."""
        self.record.save(self.run_dir / RECORD)
        state = {
            "epoch": epoch,
            "searcher": self.searcher.state_dict(),
            "rng": rng_state(),
            "record": self.record.to_dict(),
        }
        save_checkpoint(state, self.run_dir / CHECKPOINT)

    def steps(self, epoch: int) -> int:
        n = len(self.data.train)
        if self.searcher.uses_val_batches(epoch):
            n = min(n, len(self.data.val))
        return capped_steps(n, self.cfg.train.steps_per_epoch)

    def run_epoch(self, epoch: int) -> tuple[dict[str, Any], Genotype]:
        """The method's own work for one epoch (its search cost): the steps, the score, the derived genotype."""
        searcher, n = self.searcher, self.steps(epoch)
        searcher.start_epoch(epoch)
        val_batches: Iterator[Any] | None = self.data.val.epoch(epoch) if searcher.uses_val_batches(epoch) else None
        sums: dict[str, torch.Tensor] = {}
        bar = tqdm(total=n, desc=f"epoch {epoch + 1}/{self.cfg.train.epochs}", disable=not self.progress, leave=False)
        for i, train in enumerate(islice(self.data.train.epoch(epoch), n)):
            val = next(val_batches) if val_batches is not None else None
            for key, value in searcher.step(train, val).items():
                sums[key] = sums[key] + value if key in sums else value
            if (i + 1) % SYNC_EVERY == 0 or i + 1 == n:
                means = {k: float(v) / (i + 1) for k, v in sums.items()}
                if not all(math.isfinite(v) for v in means.values()):
                    raise NonFiniteLoss(f"a loss became non-finite by step {i + 1} of epoch {epoch + 1}: {means}")
                bar.set_postfix({k: f"{v:.3f}" for k, v in means.items()})
            bar.update(1)
        bar.close()
        stats: dict[str, Any] = {k: float(v) / max(n, 1) for k, v in sums.items()}
        eval_cap = self.cfg.train.eval_batches or None
        stats.update(searcher.score(islice(self.data.score.epoch(epoch), eval_cap)))
        genotype = searcher.derive()
        stats["genotype"] = self.space.format_genotype(genotype)
        stats["steps"] = n
        stats.update(self.space.ground_truth(genotype) or {})
        return stats, genotype

    def collapse_stats(self, epoch: int, genotype: Genotype, text: str) -> dict[str, Any]:
        """The suite's own measurements of collapse, outside the method's cost (timed as ``hessian_seconds``)."""
        t = self.cfg.train
        previous = self.record.epochs[-1]["genotype"] if self.record.epochs else None
        settings = CollapseSettings(t.hessian_every, t.hessian_batches, t.hessian_iters, t.hessian_tol)
        fixed = islice(self.data.score.epoch(0), t.hessian_batches)  # the same unaugmented batches every epoch
        return epoch_collapse_stats(self.searcher.model, genotype, previous, text, fixed, epoch, settings, self.space)

    def execute(self, start_epoch: int) -> RunRecord:
        record, epochs = self.record, self.cfg.train.epochs
        self.log(f"data: {self.data.description}")
        self.log(f"run folder: {self.run_dir}")
        epoch = start_epoch
        try:
            for epoch in range(start_epoch, epochs):
                autocast = search_autocast(self.cfg.train.autocast, self.device)
                with PhaseMeter(self.device, self.baseline_kib) as meter, autocast:
                    stats, genotype = self.run_epoch(epoch)
                stats.update(epoch=epoch + 1, seconds=meter.seconds, peak_mem_mib=meter.peak_mem_mib)
                stats.update(self.collapse_stats(epoch, genotype, stats["genotype"]))
                stats.update(self.searcher.epoch_extras())
                record.epochs.append(stats)
                record.metrics = summarize_metrics(record, meter.method)
                self.log(epoch_line(stats, epochs, self.space.metric))
                stop = early_stop_decision(
                    record.epochs, self.cfg.train.early_stop_factor, self.cfg.train.early_stop_window
                )
                if self.cfg.train.early_stop and stop is not None:
                    record.metrics.update(early_stopped=True, early_stop_epoch=stop[0] + 1, early_stop_reason=stop[1])
                    self.log(stop[1])
                self.save(epoch)
                if record.metrics.get("early_stopped"):
                    break
            record.status = "completed"
            keep = record.metrics.get("early_stop_epoch", len(record.epochs))
            record.genotype = record.epochs[keep - 1]["genotype"] if record.epochs else None
            if record.epochs:  # ground truth (NAS-Bench-201) of the genotype returned, not of the last epoch's
                record.metrics.update({k: v for k, v in record.epochs[keep - 1].items() if k.startswith("true_")})
        except KeyboardInterrupt:
            record.status = "interrupted"
            record.error = f"interrupted during epoch {epoch + 1}; the checkpoint holds epoch {len(record.epochs)}"
            raise
        except NonFiniteLoss as exc:
            record.status = "failed"
            record.error = f"{exc}. Lower the learning rates (--set w_lr=..., --set arch_lr=...) or check the data."
        except Exception as exc:
            record.status = "failed"
            record.error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            record.finished_at = _now()
            record.save(self.run_dir / RECORD)
        return record


def summarize_metrics(record: RunRecord, mem_method: str) -> dict[str, Any]:
    last = record.epochs[-1]
    device_count = record.provenance.get("device_count", 1)
    metrics = {
        "search_device_hours": sum(e["seconds"] for e in record.epochs) / 3600.0 * device_count,
        "peak_mem_mib": max(e["peak_mem_mib"] for e in record.epochs),
        "peak_mem_method": mem_method,
        "epochs_done": len(record.epochs),
    }
    metrics.update({k: last[k] for k in ("val_loss", "val_acc", "val_ppl") if k in last})
    metrics.update({k: v for k, v in last.items() if k.startswith("true_")})  # ground truth (NAS-Bench-201)
    # not in search_device_hours (the method's cost): the suite's Hessian-eigenvalue measurement
    metrics["hessian_device_hours"] = sum(e.get("hessian_seconds", 0.0) for e in record.epochs) / 3600.0 * device_count
    if record.metrics.get("early_stopped"):
        metrics.update({k: v for k, v in record.metrics.items() if k.startswith("early_stop")})
    return metrics


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """``torch.save`` atomically: a crash mid-write leaves the previous checkpoint."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def epoch_line(stats: dict[str, Any], epochs: int, metric: str) -> str:
    parts = [f"epoch {stats['epoch']}/{epochs}"]
    for key in ("train_loss", "arch_loss", "val_loss"):
        if key in stats:
            parts.append(f"{key} {stats[key]:.4f}")
    for key in ("val_acc" if metric == "acc" else "val_ppl", "true_test_acc"):
        if key in stats:
            parts.append(f"{key} {stats[key]:.2f}")
    if "hessian_eig" in stats:
        parts.append(f"hessian_eig {stats['hessian_eig']:.4g}")
    parts.append(f"{stats['seconds']:.1f}s")
    parts.append(f"peak {stats['peak_mem_mib']:.0f} MiB")
    return " | ".join(parts)


def run_logger(run_dir: Path, progress: bool, echo: Callable[[str], None]) -> Callable[[str], None]:
    """A log function: one timestamped line per call in ``run_dir/log.txt``, and the line on the console."""

    def log(line: str) -> None:
        with (run_dir / LOG).open("a") as f:
            f.write(f"{time.strftime('%H:%M:%S')} {line}\n")
        (tqdm.write if progress else echo)(line)

    return log


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The checkpoint of ``run_dir``, on the CPU (the random states must be); a clear error if there is none."""
    checkpoint = run_dir / CHECKPOINT
    if not checkpoint.exists():
        raise UserError(f"cannot resume: {checkpoint} does not exist (the run ended before its first epoch)")
    return torch.load(checkpoint, map_location="cpu", weights_only=False)


def reopen(run_dir: Path, log: Callable[[str], None], epochs: int) -> tuple[dict[str, Any], RunRecord, int]:
    """For ``--resume``: the checkpoint's state (random states restored), its record reopened, and the first
    epoch still to run."""
    state = load_checkpoint(run_dir)
    set_rng_state(state["rng"])
    record = RunRecord(**state["record"])
    record.status, record.error, record.finished_at = "running", None, None
    start = state["epoch"] + 1
    log(f"resuming after epoch {start} of {epochs}")
    return state, record, start


def load_checkpoint_state(load: Callable[[dict[str, Any]], None], state: dict[str, Any], run_dir: Path) -> None:
    """``load(state)``, with a clear error where the checkpoint was written by code whose modules differ
    (torch reports missing or unexpected keys and shape mismatches as RuntimeError)."""
    try:
        load(state)
    except (RuntimeError, KeyError, ValueError) as exc:
        reason = str(exc).strip().splitlines()[0]
        raise UserError(
            f"cannot resume {run_dir}: its checkpoint does not fit this version of the code ({reason}); "
            "start a new run without --resume"
        ) from None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run(
    cfg: RunConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    download: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
) -> RunRecord:
    """Search with ``cfg``, writing ``record.json`` and ``checkpoint.pt`` into ``run_dir`` at every epoch.

    With ``resume``, continue from the checkpoint in ``run_dir``; the result equals that of a run that
    was never interrupted.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    log = run_logger(run_dir, progress, echo)

    seed_all(cfg.seed)
    device = resolve_device(cfg.device)
    baseline_kib = current_rss_kib()
    space = SPACES.get(cfg.space)()
    searcher_cls = SEARCHERS.get(cfg.searcher)
    data = space.load_data(cfg.data, cfg, device, cfg.seed, download)
    searcher = searcher_cls(space, cfg, data, device)
    record = RunRecord(
        searcher=cfg.searcher,
        space=cfg.space,
        seed=cfg.seed,
        preset=cfg.preset,
        config=cfg.to_dict(),
        provenance=provenance(device),
        data=data.description,
        started_at=_now(),
    )
    start_epoch = 0
    if resume:
        state, record, start_epoch = reopen(run_dir, log, cfg.train.epochs)
        load_checkpoint_state(searcher.load_state_dict, state["searcher"], run_dir)
    return Run(cfg, run_dir, space, data, searcher, record, device, log, progress, baseline_kib).execute(start_epoch)
