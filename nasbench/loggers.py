"""Optional live loggers of a search (``--log tensorboard``, ``--log wandb``): per epoch the losses, scores,
ground truth where known, the eigenvalue, the skip count and, per cell, softmax(alpha) as a heat map
(edges x ops). The run record stays the source of truth; a logger only mirrors it.

``pip install -e ".[tensorboard]"`` or ``".[wandb]"``. Weights & Biases follows its own environment
(``WANDB_PROJECT``, ``WANDB_MODE=offline`` where there is no network).
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from nasbench.errors import UserError
from nasbench.results import RunRecord

LOGGERS = ("tensorboard", "wandb")


class EpochLogger(Protocol):
    def epoch(self, stats: dict[str, Any]) -> None: ...

    def close(self) -> None: ...


def scalars(stats: dict[str, Any]) -> dict[str, float]:
    """The epoch's numbers, a per-cell dict flattened to ``key/cell``."""
    out: dict[str, float] = {}
    for key, value in stats.items():
        if isinstance(value, bool) or key == "epoch":
            continue
        if isinstance(value, numbers.Real):
            out[key] = float(value)
        elif isinstance(value, dict) and key != "arch_weights":
            out.update({f"{key}/{k}": float(v) for k, v in value.items() if isinstance(v, numbers.Real)})
    return out


def heat_maps(stats: dict[str, Any]) -> dict[str, np.ndarray]:
    """Per cell, the architecture weights as an [edges, ops] array in [0, 1]."""
    return {cell: np.asarray(rows, dtype=np.float32) for cell, rows in (stats.get("arch_weights") or {}).items()}


class TensorBoardLogger:
    def __init__(self, folder: Path, record: RunRecord) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise UserError('--log tensorboard needs TensorBoard: pip install -e ".[tensorboard]"') from None
        self.writer = SummaryWriter(log_dir=str(folder / "tensorboard"))
        self.writer.add_text(
            "config", f"{record.searcher} on {record.space}, preset {record.preset}, seed {record.seed}"
        )

    def epoch(self, stats: dict[str, Any]) -> None:
        step = int(stats["epoch"])
        for key, value in scalars(stats).items():
            self.writer.add_scalar(key, value, step)
        for cell, weights in heat_maps(stats).items():
            self.writer.add_image(f"arch_weights/{cell}", weights[None], step, dataformats="CHW")
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbLogger:
    def __init__(self, folder: Path, record: RunRecord) -> None:
        try:
            import wandb
        except ImportError:
            raise UserError('--log wandb needs Weights & Biases: pip install -e ".[wandb]"') from None
        self.wandb = wandb
        self.run = wandb.init(project="nasbench", dir=str(folder), name=folder.name, config=record.config, reinit=True)

    def epoch(self, stats: dict[str, Any]) -> None:
        images = {f"arch_weights/{cell}": self.wandb.Image(w) for cell, w in heat_maps(stats).items()}
        self.run.log({**scalars(stats), **images}, step=int(stats["epoch"]))

    def close(self) -> None:
        self.run.finish()


def make_loggers(names: list[str], folder: Path, record: RunRecord) -> list[EpochLogger]:
    unknown = sorted(set(names) - set(LOGGERS))
    if unknown:
        raise UserError(f"--log {', '.join(unknown)}: use {' or '.join(LOGGERS)}")
    kinds: dict[str, type] = {"tensorboard": TensorBoardLogger, "wandb": WandbLogger}
    return [kinds[name](folder, record) for name in dict.fromkeys(names)]
