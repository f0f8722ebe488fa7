"""run(config) -> RunRecord: epochs, schedules, checkpoints, resume, progress, and the run record."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from nasbench.config import AUTOCAST_DTYPES, RunConfig
from nasbench.data.streams import SearchData, capped_steps, epoch_steps
from nasbench.errors import UserError
from nasbench.genotype import Genotype
from nasbench.loggers import EpochLogger, make_loggers
from nasbench.metrics.collapse import (
    CollapseSettings,
    EarlyStopRule,
    WarmStart,
    early_stop_decision,
    epoch_collapse_stats,
)
from nasbench.metrics.cost import PhaseMeter, current_rss_kib
from nasbench.provenance import provenance, rng_state, seed_all
from nasbench.registry import SEARCHERS, SPACES
from nasbench.results import RunRecord
from nasbench.rundir import (
    NonFiniteLoss,
    RunFolder,
    load_state,
    now_iso,
    open_folder,
    reopen,
    save_record,
    track_status,
)
from nasbench.searchers.base import Searcher
from nasbench.searchers.mixers import ExpectedMixer
from nasbench.spaces.base import SearchSpace
from nasbench.threads import rebalance

SYNC_EVERY = 10  # steps between host syncs (progress bar, NaN check)


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


def default_preset(preset: str | None, device: torch.device) -> str:
    """The preset asked for, else the papers' protocol on a GPU and the CPU budget (``small``) elsewhere."""
    return preset or ("paper" if device.type == "cuda" else "small")


@dataclass
class Run:
    """Everything one search run holds while it runs."""

    cfg: RunConfig
    folder: RunFolder
    space: SearchSpace
    data: SearchData
    searcher: Searcher
    record: RunRecord
    device: torch.device
    log: Callable[[str], None]
    progress: bool
    baseline_kib: int | None = None  # resident memory before data and model were built
    loggers: Sequence[EpochLogger] = ()  # live mirrors of each epoch (TensorBoard, W&B); the record stays the truth
    warm: WarmStart = field(default_factory=WarmStart)  # where the next eigenvalue measurement may start

    def save(self, epoch: int) -> None:
        state = {
            "epoch": epoch,
            "searcher": self.searcher.state_dict(),
            "rng": rng_state(),
            "hessian_vector": self.warm.vector,
        }
        self.folder.save(self.record, state, epochs_done=len(self.record.epochs))

    def steps(self, epoch: int) -> int:
        n = epoch_steps(self.data.train, epoch)
        if self.searcher.uses_val_batches(epoch):
            n = min(n, epoch_steps(self.data.val, epoch))
        return capped_steps(n, self.cfg.train.steps_per_epoch)

    def run_epoch(self, epoch: int) -> tuple[dict[str, Any], Genotype]:
        """The method's own work for one epoch (its search cost): the steps, the score, the derived genotype."""
        searcher, n = self.searcher, self.steps(epoch)
        searcher.start_epoch(epoch)
        val_batches: Iterator[Any] | None = self.data.val.epoch(epoch) if searcher.uses_val_batches(epoch) else None
        sums: dict[str, torch.Tensor] = {}
        bar = tqdm(total=n, desc=f"epoch {epoch + 1}/{searcher.epochs()}", disable=not self.progress, leave=False)
        for i, train in enumerate(islice(self.data.train.epoch(epoch), n)):
            rebalance()  # a run started or ended beside this one changes its share of the cores
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
        rebalance()
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
        settings = CollapseSettings(
            self.searcher.epochs(),
            t.hessian_every,
            t.hessian_batches,
            t.hessian_iters,
            t.hessian_tol,
            t.hessian_warm_start,
            t.arch_weight_decay,
        )
        fixed = islice(self.data.score.epoch(0), t.hessian_batches)  # the same unaugmented batches every epoch
        model, weights = self.searcher.model, self.searcher.arch_weights()
        context = (genotype, previous, text, fixed, epoch, settings, self.space, self.warm)
        if model is None:
            return epoch_collapse_stats(None, None, *context)
        with model.mixed_by(ExpectedMixer(model.mixer)):  # a sampling method: its expected supernet
            return epoch_collapse_stats(model, weights, *context)

    def execute(self, start_epoch: int) -> RunRecord:
        record, epochs = self.record, self.searcher.epochs()
        self.log(f"data: {self.data.description}")
        self.log(f"run folder: {self.folder.path}")
        running = {"epoch": start_epoch + 1}
        fix = "Lower the learning rates (--set w_lr=..., --set arch_lr=...) or check the data."
        with track_status(record, self.folder, lambda: running["epoch"], fix):
            for epoch in range(start_epoch, epochs):
                running["epoch"] = epoch + 1
                autocast = search_autocast(self.cfg.train.autocast, self.device)
                with PhaseMeter(self.device, self.baseline_kib) as meter, autocast:
                    stats, genotype = self.run_epoch(epoch)
                stats.update(epoch=epoch + 1, seconds=meter.seconds, peak_mem_mib=meter.peak_mem_mib)
                stats.update(self.collapse_stats(epoch, genotype, stats["genotype"]))
                stats.update(self.searcher.epoch_extras())
                record.epochs.append(stats)
                record.metrics = summarize_metrics(record, meter.method)
                stop = early_stop_decision(record.epochs, self.early_stop) if self.early_stop else None
                if stop is not None and epoch < epochs - 1:  # RobustDARTS does not check after the last epoch
                    returned = record.epochs[stop[0]]["epoch"]
                    record.metrics.update(early_stopped=True, early_stop_epoch=returned, early_stop_reason=stop[1])
                self.save(epoch)  # before the epoch's line: a line on screen means a checkpoint on disk
                self.log(epoch_line(stats, epochs, self.space.metric))
                for logger in self.loggers:
                    logger.epoch(stats)
                if record.metrics.get("early_stopped"):
                    self.log(record.metrics["early_stop_reason"])
                    break
            if record.epochs:
                record.metrics.update(returned_genotype(record.epochs, record.metrics, self.space.metric))
                record.genotype = record.epochs[record.metrics["returned_epoch"] - 1]["genotype"]
                record.genotype_cells = genotype_json(self.space.parse_genotype(record.genotype))
        return record

    @property
    def early_stop(self) -> EarlyStopRule | None:
        t = self.cfg.train
        if not t.early_stop:
            return None
        return EarlyStopRule(t.early_stop_window, t.early_stop_delta, t.early_stop_factor, t.early_stop_start_epoch)


def genotype_json(genotype: Genotype) -> dict[str, Any]:
    """The genotype as plain JSON: per cell, its edges as [op, src, dst] and the nodes concatenated."""
    return {
        name: {"edges": [list(e) for e in edges], "concat": list(genotype.concat_of(name))}
        for name, edges in genotype.cells
    }


def returned_genotype(epochs: list[dict[str, Any]], metrics: dict[str, Any], metric: str) -> dict[str, Any]:
    """Which epoch's genotype the run returns (the last, or DARTS-ES's choice) and its ground truth; beside
    it, the genotype of the epoch that the search's own validation score ranks best, and its ground truth."""
    returned = metrics.get("early_stop_epoch", epochs[-1]["epoch"])
    out: dict[str, Any] = {
        "returned_epoch": returned,
        "returned_by": "DARTS-ES" if "early_stop_epoch" in metrics else "last epoch",
    }
    chosen = epochs[returned - 1]
    out.update({k: v for k, v in chosen.items() if k.startswith("true_")})  # of the genotype returned
    key, sign = ("val_acc", 1.0) if metric == "acc" else ("val_ppl", -1.0)
    scored = [e for e in epochs if isinstance(e.get(key), (int, float)) and math.isfinite(e[key])]
    if scored:
        best = max(scored, key=lambda e: (sign * e[key], -e["epoch"]))  # the earliest of equal scores
        out.update(best_val_epoch=best["epoch"], best_val_genotype=best["genotype"])
        out.update({f"best_val_{k}": v for k, v in best.items() if k.startswith("true_")})
    return out


def stopped_after(record: RunRecord, epoch: int, metric: str) -> RunRecord:
    """A completed search ``record`` read as if the search had stopped after ``epoch`` (from 1): its first
    ``epoch`` epochs, the genotype derived after the last of them, and the metrics the run would then have
    had (cost, ground truth, best-validation cell). The learning-rate schedules were still those of the whole
    run. Results of later evaluations are left out; a run that ended by then is returned as it is."""
    if epoch < 1:
        raise UserError(f"a search stops after epoch 1 at the earliest, not after epoch {epoch}")
    if len(record.epochs) <= epoch:
        return record
    epochs = record.epochs[:epoch]
    for e in epochs:
        missing = [k for k in ("seconds", "peak_mem_mib", "genotype") if k not in e]
        if missing:
            raise UserError(f"epoch {e.get('epoch')} lacks {', '.join(missing)}: cannot read the run at epoch {epoch}")
    copy = dataclasses.replace(record, epochs=epochs, metrics={})
    copy.metrics = summarize_metrics(copy, str(record.metrics.get("peak_mem_method", "")))
    copy.metrics.update(returned_genotype(epochs, copy.metrics, metric), stopped_after_epoch=epoch)
    copy.genotype, copy.genotype_cells = epochs[-1]["genotype"], None
    return copy


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


def epoch_line(stats: dict[str, Any], epochs: int, metric: str) -> str:
    parts = [f"epoch {stats['epoch']}/{epochs}"]
    for key in ("train_loss", "arch_loss", "val_loss"):
        if key in stats:
            parts.append(f"{key} {stats[key]:.4f}")
    for key in ("val_acc" if metric == "acc" else "val_ppl", "true_test_acc"):
        if key in stats:
            parts.append(f"{key} {stats[key]:.2f}")
    parts.append(f"{stats['seconds']:.1f}s search")
    if "hessian_eig" in stats:  # the suite's measurement, timed apart from the method's cost
        parts.append(f"hessian_eig {stats['hessian_eig']:.4g} ({stats.get('hessian_seconds', 0.0):.1f}s)")
    parts.append(f"peak {stats['peak_mem_mib']:.0f} MiB")
    return " | ".join(parts)


def run(
    cfg: RunConfig,
    run_dir: Path,
    *,
    resume: bool | str = False,
    download: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    log_to: Sequence[str] = (),
) -> RunRecord:
    """Search with ``cfg``, writing ``record.json`` and ``checkpoint.pt`` into ``run_dir`` at every epoch;
    ``log_to``: live loggers besides (``nasbench.loggers``).

    ``resume``: True continues the run in ``run_dir`` from its checkpoint, with a result equal to that of
    a run never interrupted; False starts a new one; "auto" does whichever applies (``rundir.open_folder``).
    A folder that holds a completed run is returned as it is.
    """
    command = f"nasbench run --searcher {cfg.searcher} --space {cfg.space} --seed {cfg.seed}"
    with open_folder(Path(run_dir), command, "search", resume) as opened:
        if opened.finished:
            assert opened.existing is not None
            echo(f"{run_dir} holds a completed run; nothing was changed")
            return opened.existing
        folder = opened.folder
        log = folder.log_to(progress, echo)
        seed_all(cfg.seed)
        device = resolve_device(cfg.device)
        baseline_kib = current_rss_kib()
        space = SPACES.get(cfg.space)()
        data = space.load_data(cfg.data, cfg, device, cfg.seed, download)
        searcher = SEARCHERS.get(cfg.searcher)(space, cfg, data, device)
        record = RunRecord(
            searcher=cfg.searcher,
            space=cfg.space,
            seed=cfg.seed,
            preset=cfg.preset,
            config=cfg.to_dict(),
            provenance=provenance(device),
            data=data.description,
            started_at=now_iso(),
        )
        start_epoch, warm = 0, WarmStart()
        if opened.resume:
            state, record, start_epoch = reopen(folder, log, searcher.epochs())
            if (record.searcher, record.space) != (cfg.searcher, cfg.space):
                raise UserError(
                    f"{run_dir} holds a {record.searcher} search on {record.space}, not {cfg.searcher} on {cfg.space}"
                )
            load_state(searcher.load_state_dict, state["searcher"], folder)
            warm.vector = state.get("hessian_vector")  # absent from a checkpoint older than the setting
        save_record(record, folder.record_path)
        loggers = make_loggers(list(log_to), folder.path, record)
        try:
            return Run(
                cfg, folder, space, data, searcher, record, device, log, progress, baseline_kib, loggers, warm
            ).execute(start_epoch)
        finally:
            for logger in loggers:
                logger.close()
